"""Files in JetStream Object Store buckets (message attachments)."""

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import BinaryIO

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from contracts.envelope import new_id
from contracts.events import AttachmentRef
from services.runtime.files import CheckedFile
from services.runtime.logging import get_logger
from services.runtime.nats import ensure_replicas, wait_for_leader

log = get_logger("portico.objects")

ATTACHMENTS_BUCKET = "attachments"


async def ensure_object_store(js: JetStreamContext, bucket: str, *, description: str = "",
                              replicas: int = 1) -> ObjectStore:
    """The bucket, created with `replicas` copies (`Settings.resolved_nats_replicas`) if missing; an
    existing one is brought to that many copies. Raises `nats.js.errors.APIError` when the server
    cannot keep them (see `services.runtime.nats.ensure_stream`)."""
    try:
        store = await js.object_store(bucket)
    except nats.js.errors.BucketNotFoundError:
        try:
            store = await js.create_object_store(bucket, config=ObjectStoreConfig(
                bucket=bucket, description=description, storage=StorageType.FILE, replicas=replicas))
            if replicas > 1:
                await wait_for_leader(js, f"OBJ_{bucket}")
            return store
        except nats.js.errors.BadRequestError:
            store = await js.object_store(bucket)  # created by another process meanwhile
    await ensure_replicas(js, f"OBJ_{bucket}", replicas)
    return store


async def read_object(js: JetStreamContext, bucket: str, name: str) -> tuple[int, AsyncIterator[bytes]]:
    """(size, chunks) of an object, read with a pull consumer over its chunks.

    `ObjectStore.get` waits on an ordered push consumer and stalls about 250 ms on a 3 MB file;
    fetching the chunks in batches takes a few milliseconds. The digest is checked at the end:
    a corrupted object raises instead of finishing the download.
    """
    store = await js.object_store(bucket)
    info = await store.get_info(name)
    expected = base64.urlsafe_b64decode(info.digest.split("=", 1)[1] + "==") if info.digest else None

    async def chunks() -> AsyncIterator[bytes]:
        if not info.chunks:
            return
        subscription = await js.pull_subscribe(
            f"$O.{bucket}.C.{info.nuid}", stream=f"OBJ_{bucket}",
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30.0))
        digest = hashlib.sha256()
        try:
            remaining = info.chunks
            while remaining:
                for message in await subscription.fetch(min(remaining, 64), timeout=5):
                    digest.update(message.data)
                    remaining -= 1
                    yield message.data
        finally:
            await subscription.unsubscribe()
        if expected is not None and digest.digest() != expected:
            raise OSError(f"object {name} in {bucket} does not match its digest")

    return info.size or 0, chunks()


async def store_attachments(js: JetStreamContext,
                            checked: list[tuple[CheckedFile, bytes | BinaryIO]]) -> list[AttachmentRef]:
    """Put checked files in the attachments bucket, each under a new id; all or none are left stored.
    A file's content is bytes, or a binary file read from where it stands in chunks (never whole)."""
    if not checked:
        return []
    bucket = await js.object_store(ATTACHMENTS_BUCKET)
    refs: list[AttachmentRef] = []
    try:
        for info, data in checked:
            ref = AttachmentRef(attachment_id=new_id(), filename=info.filename, content_type=info.content_type,
                                size=info.size, sha256=info.sha256)
            await bucket.put(ref.attachment_id, data)
            refs.append(ref)
    except Exception:
        await delete_attachments(js, [r.attachment_id for r in refs], best_effort=True)
        raise
    return refs


async def delete_attachments(js: JetStreamContext, names: list[str], *, best_effort: bool = False) -> None:
    """Delete files from the attachments bucket (one already gone is fine). With `best_effort` a failure is
    only logged: the caller is cleaning up after a refusal, and the orphan sweep in conversations will
    delete what is left."""
    if not names:
        return
    bucket = await js.object_store(ATTACHMENTS_BUCKET)
    for name in names:
        try:
            await bucket.delete(name)
        except nats.js.errors.NotFoundError:
            pass
        except Exception as exc:
            if not best_effort:
                raise
            log.warning("could not delete an unowned attachment", attachment_id=name, error=repr(exc))
