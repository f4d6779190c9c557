"""Uploading files with a message, and what was stored."""

from dataclasses import dataclass
import httpx
import nats
from nats.js.errors import NotFoundError
from services.runtime.objects import ATTACHMENTS_BUCKET
from tests.helpers import count


@dataclass(frozen=True)
class Stored:
    """Everything a refused request must leave as it was."""

    messages: int
    conversations: int
    attachments: int
    objects: frozenset[str]


async def stored_objects(nats_url: str) -> frozenset[str]:
    """Names of the files in the attachments Object Store (deleted ones left out)."""
    nc = await nats.connect(nats_url)
    try:
        bucket = await nc.jetstream().object_store(ATTACHMENTS_BUCKET)
        return frozenset(info.name for info in await bucket.list(ignore_deletes=True))
    except NotFoundError:  # an empty bucket, or none yet
        return frozenset()
    finally:
        await nc.close()


async def stored(settings) -> Stored:  # type: ignore[no-untyped-def]
    db = settings.database_url("conversations")
    return Stored(messages=count(db, "messages"), conversations=count(db, "conversations"),
                  attachments=count(db, "attachments"), objects=await stored_objects(settings.nats_url))


def upload(*files: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The `files` argument of httpx for a multipart message."""
    return [("files", (name, data, "application/octet-stream")) for name, data in files]


def refusal(response: httpx.Response) -> tuple[int, str | None]:
    try:
        code = response.json().get("error")
    except ValueError:
        code = None
    return response.status_code, code
