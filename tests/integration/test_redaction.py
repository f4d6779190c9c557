"""Redacting a message erases its text and files from storage, not just from the view."""

from pathlib import Path

import nats
import nats.js.errors
import pytest

from contracts.events import MessagePosted, MessageRedacted
from tests.fixtures.files import sample
from tests.helpers import rows, wait_until
from tests.kit.conversations import make_demo, start
from tests.kit.streams import stream_events

SECRET_TEXT = "my card number is 4111-1111-1111-1111 zebra-quokka"


@pytest.fixture
async def demo(settings, stack, gateway, nats_server):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    demo.nats_store = nats_server.store_dir
    yield demo
    await demo.admin.aclose()


def files_containing(directory: Path, needle: bytes) -> list[str]:
    return [str(p) for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_redaction_erases_text_and_files_everywhere(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    cid = (await start(ana, body="Hello, please help"))["id"]
    posted = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages", data={"body": SECRET_TEXT},
                            files=[("files", ("card.png", sample("png"), "image/png"))])
    assert posted.status_code == 201, posted.text
    message = posted.json()["message"]
    attachment_id = message["attachments"][0]["id"]
    db = demo.settings.database_url("conversations")

    async def published() -> bool:
        return any(e.data["message_id"] == message["id"]
                   for e in await stream_events(demo.settings.nats_url, MessagePosted.subject()))

    await wait_until(published)
    assert files_containing(demo.nats_store, SECRET_TEXT.encode())  # the event is in the stream, before

    redacted = await agent.post(f"/api/v1/agent/conversations/{cid}/messages/{message['id']}/redact")
    assert redacted.status_code == 200, redacted.text

    view = (await ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
    shown = next(m for m in view["messages"] if m["id"] == message["id"])
    assert shown["redacted"] is True and shown["body"] is None and shown["attachments"] == []
    assert view["preview"] == "Hello, please help"
    download = await ana.get(f"/api/v1/portals/demo/attachments/{attachment_id}")
    assert download.status_code == 404
    # Gone from the database row, the outbox, the stream and the Object Store.
    assert rows(db, "SELECT body FROM messages WHERE id = :id", id=message["id"]) == [(None,)]
    assert all(SECRET_TEXT not in payload for (payload,) in rows(db, "SELECT payload FROM outbox"))
    assert not any(SECRET_TEXT in str(e.data) for e in
                   await stream_events(demo.settings.nats_url, MessagePosted.subject()))
    nc = await nats.connect(demo.settings.nats_url)
    try:
        store = await nc.jetstream().object_store("attachments")
        with pytest.raises(nats.js.errors.NotFoundError):
            await store.get_info(attachment_id)
    finally:
        await nc.close()
    # Not left behind in the files either: the JetStream store, and SQLite's database and WAL.
    assert files_containing(demo.nats_store, SECRET_TEXT.encode()) == []
    if db.startswith("sqlite"):
        path = Path(db.removeprefix("sqlite:///"))
        assert files_containing(path.parent, SECRET_TEXT.encode()) == []

    async def redaction_published() -> bool:
        return any(e.data["message_id"] == message["id"]
                   for e in await stream_events(demo.settings.nats_url, MessageRedacted.subject()))

    await wait_until(redaction_published)
    again = await agent.post(f"/api/v1/agent/conversations/{cid}/messages/{message['id']}/redact")
    assert again.status_code == 200  # idempotent
    unknown = await agent.post(f"/api/v1/agent/conversations/{cid}/messages/01JD8ZQ4S5K4W3YB8W1T0VQ9E2/redact")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    customer_tries = await ana.post(f"/api/v1/agent/conversations/{cid}/messages/{message['id']}/redact")
    assert customer_tries.status_code == 403
