"""`Idempotency-Key` through the gateway: a retried POST gets the first answer back (with
`Idempotent-Replayed: true`) and stores nothing more: no second conversation, message, file or event."""

import asyncio

import nats
import nats.js.errors
import pytest

from contracts.events import ConversationCreated, ConversationReopened, MessagePosted
from tests.fixtures.files import sample
from tests.helpers import count, wait_until
from tests.kit.conversations import make_demo, start
from tests.kit.streams import stream_events

LIST = "/api/v1/portals/demo/conversations"


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


def key(value: str) -> dict:
    return {"Idempotency-Key": value}


def same_answer(first: dict, retry: dict) -> None:
    """The retry's body is the first one's; only the `replayed` flag tells them apart."""
    assert first.get("replayed") is False and retry.get("replayed") is True
    assert {k: v for k, v in retry.items() if k != "replayed"} == {k: v for k, v in first.items() if k != "replayed"}


async def events_of(demo, event, conversation_id: str) -> list:  # type: ignore[no-untyped-def]
    """The conversation's events of a type, once the outbox has sent everything."""
    conv_db = demo.settings.database_url("conversations")
    await wait_until(lambda: count(conv_db, "outbox", "published_at IS NULL") == 0)
    return [e for e in await stream_events(demo.settings.nats_url, event.subject())
            if e.data["conversation_id"] == conversation_id]


def customer_messages(demo, conversation_id: str) -> int:  # type: ignore[no-untyped-def]
    return count(demo.settings.database_url("conversations"), "messages",
                 "conversation_id = :c AND kind = 'message'", c=conversation_id)


async def stored_objects(demo) -> set[str]:  # type: ignore[no-untyped-def]
    nc = await nats.connect(demo.settings.nats_url)
    try:
        bucket = await nc.jetstream().object_store("attachments")
        try:
            return {info.name for info in await bucket.list(ignore_deletes=True) if not info.deleted}
        except nats.js.errors.NotFoundError:
            return set()
    finally:
        await nc.close()


async def test_starting_a_conversation_twice_with_one_key_creates_one(demo):
    ana = await demo.customer("ana@example.com")
    conv_db = demo.settings.database_url("conversations")
    body = {"subject": "Invoice is wrong", "body": "Invoice 42 says 420 EUR"}
    first = await ana.post(LIST, json=body, headers=key("start-1"))
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    retry = await ana.post(LIST, json=body, headers=key("start-1"))
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    same_answer(first.json(), retry.json())
    cid = first.json()["conversation"]["id"]

    assert count(conv_db, "conversations") == 1
    assert customer_messages(demo, cid) == 1
    assert [c["id"] for c in (await ana.get(LIST)).json()["conversations"]] == [cid]
    assert len(await events_of(demo, ConversationCreated, cid)) == 1
    assert len(await events_of(demo, MessagePosted, cid)) == 1

    reused = await ana.post(LIST, json={**body, "body": "Invoice 43 instead"}, headers=key("start-1"))
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"] == "idempotency_key_reused" and reused.json()["message"]
    assert count(conv_db, "conversations") == 1

    # Without a key, or with another one, it is a new conversation each time.
    assert (await ana.post(LIST, json=body)).status_code == 201
    assert (await ana.post(LIST, json=body, headers=key("start-2"))).status_code == 201
    assert count(conv_db, "conversations") == 3
    await ana.aclose()


async def test_a_retried_json_message_is_posted_once(demo):
    ana = await demo.customer("ana@example.com")
    cid = (await start(ana))["id"]
    path = f"{LIST}/{cid}/messages"
    first = await ana.post(path, json={"body": "More details"}, headers=key("msg-1"))
    assert first.status_code == 201, first.text
    retry = await ana.post(path, json={"body": "More details"}, headers=key("msg-1"))
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    same_answer(first.json(), retry.json())

    detail = (await ana.get(f"{LIST}/{cid}")).json()["conversation"]
    assert [m["body"] for m in detail["messages"] if m["kind"] == "message"] == ["Hello, invoice 42 ...",
                                                                                 "More details"]
    assert len(await events_of(demo, MessagePosted, cid)) == 2  # the first message and this one

    reused = await ana.post(path, json={"body": "Something else"}, headers=key("msg-1"))
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused", reused.text
    # The key belongs to that message in that conversation: the same text elsewhere is another request.
    other = (await start(ana, subject="Another one"))["id"]
    elsewhere = await ana.post(f"{LIST}/{other}/messages", json={"body": "More details"}, headers=key("msg-1"))
    assert elsewhere.status_code == 422 and elsewhere.json()["error"] == "idempotency_key_reused", elsewhere.text
    assert customer_messages(demo, cid) == 2 and customer_messages(demo, other) == 1
    await ana.aclose()


async def test_a_retried_message_with_a_file_stores_one_message_one_attachment_one_object(demo):
    ana = await demo.customer("ana@example.com")
    cid = (await start(ana))["id"]
    conv_db = demo.settings.database_url("conversations")
    png = sample("png")
    path = f"{LIST}/{cid}/messages"

    def form() -> dict:
        return {"data": {"body": "Screenshot attached"}, "files": [("files", ("screen.png", png, "image/png"))]}

    objects_before = await stored_objects(demo)
    first = await ana.post(path, **form(), headers=key("file-1"))
    assert first.status_code == 201, first.text
    attachment = first.json()["message"]["attachments"][0]
    assert attachment["filename"] == "screen.png" and attachment["size"] == len(png)
    objects_after_first = await stored_objects(demo)
    assert objects_after_first - objects_before == {attachment["id"]}

    retry = await ana.post(path, **form(), headers=key("file-1"))
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    same_answer(first.json(), retry.json())
    assert count(conv_db, "attachments", "conversation_id = :c", c=cid) == 1
    assert customer_messages(demo, cid) == 2
    assert await stored_objects(demo) == objects_after_first  # the retry's upload was not kept
    posted = await events_of(demo, MessagePosted, cid)
    assert len(posted) == 2 and [len(e.data["attachments"]) for e in posted] == [0, 1]

    download = await ana.get(f"/api/v1/portals/demo/attachments/{attachment['id']}")
    assert download.status_code == 200 and download.content == png

    # Another file under the same key is another request: refused, and its upload not kept either.
    other = {"data": {"body": "Screenshot attached"},
             "files": [("files", ("other.gif", sample("gif"), "image/gif"))]}
    reused = await ana.post(path, **other, headers=key("file-1"))
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused", reused.text
    assert await stored_objects(demo) == objects_after_first
    assert count(conv_db, "attachments") == 1
    await ana.aclose()


async def test_a_retried_reopen_reopens_once(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    cid = (await start(ana))["id"]
    assert (await agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    path = f"{LIST}/{cid}/reopen"

    first = await ana.post(path, headers=key("reopen-1"))
    assert first.status_code == 200, first.text
    assert first.json()["conversation"]["status"] == "open"
    retry = await ana.post(path, headers=key("reopen-1"))
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    same_answer(first.json(), retry.json())
    assert len(await events_of(demo, ConversationReopened, cid)) == 1

    # Closed again by the agent: a late retry of that same reopen changes nothing.
    assert (await agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    late = await ana.post(path, headers=key("reopen-1"))
    assert late.status_code == 200 and late.headers["Idempotent-Replayed"] == "true"
    assert (await ana.get(f"{LIST}/{cid}")).json()["conversation"]["status"] == "closed"
    assert len(await events_of(demo, ConversationReopened, cid)) == 1

    other = (await start(ana, subject="Second"))["id"]
    reused = await ana.post(f"{LIST}/{other}/reopen", headers=key("reopen-1"))
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused", reused.text
    for client in (ana, agent):
        await client.aclose()


async def test_a_retried_agent_answer_is_posted_and_sent_once(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    cid = (await start(ana))["id"]
    path = f"/api/v1/agent/conversations/{cid}/messages"

    first = await agent.post(path, json={"body": "We are on it"}, headers=key("answer-1"))
    assert first.status_code == 201, first.text
    retry = await agent.post(path, json={"body": "We are on it"}, headers=key("answer-1"))
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    same_answer(first.json(), retry.json())

    answers = [m for m in (await ana.get(f"{LIST}/{cid}")).json()["conversation"]["messages"]
               if m["author_kind"] == "agent"]
    assert [m["body"] for m in answers] == ["We are on it"]
    posted = [e for e in await events_of(demo, MessagePosted, cid) if e.data["author_kind"] == "agent"]
    assert len(posted) == 1

    as_note = await agent.post(path, json={"body": "We are on it", "internal": True}, headers=key("answer-1"))
    assert as_note.status_code == 422 and as_note.json()["error"] == "idempotency_key_reused", as_note.text
    # A customer using the same key value is someone else's key.
    mine = await ana.post(f"{LIST}/{cid}/messages", json={"body": "Thanks"}, headers=key("answer-1"))
    assert mine.status_code == 201 and "Idempotent-Replayed" not in mine.headers, mine.text
    assert count(demo.settings.database_url("conversations"), "messages",
                 "conversation_id = :c AND author_kind = 'agent'", c=cid) == 1
    for client in (ana, agent):
        await client.aclose()


async def test_ten_concurrent_requests_with_one_key_post_one_message(demo):
    ana = await demo.customer("ana@example.com")
    cid = (await start(ana))["id"]
    path = f"{LIST}/{cid}/messages"
    responses = await asyncio.gather(*(ana.post(path, json={"body": "Double-clicked"}, headers=key("burst-1"))
                                       for _ in range(10)))
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.json()["message"]["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") != "true" for r in responses) == 1
    assert customer_messages(demo, cid) == 2
    assert len(await events_of(demo, MessagePosted, cid)) == 2

    conversations_before = count(demo.settings.database_url("conversations"), "conversations")
    started = await asyncio.gather(*(ana.post(LIST, json={"subject": "Burst", "body": "Once"},
                                              headers=key("burst-2")) for _ in range(10)))
    assert [r.status_code for r in started] == [201] * 10, [r.text for r in started]
    assert len({r.json()["conversation"]["id"] for r in started}) == 1
    assert count(demo.settings.database_url("conversations"), "conversations") == conversations_before + 1
    await ana.aclose()


async def test_two_customers_may_use_the_same_key_value(demo):
    ana, bo = await demo.customer("ana@example.com"), await demo.customer("bo@example.com")
    body = {"subject": "Same words", "body": "Same request"}
    for_ana = await ana.post(LIST, json=body, headers=key("shared-key"))
    for_bo = await bo.post(LIST, json=body, headers=key("shared-key"))
    assert for_ana.status_code == for_bo.status_code == 201, (for_ana.text, for_bo.text)
    assert "Idempotent-Replayed" not in for_bo.headers
    ana_cid, bo_cid = for_ana.json()["conversation"]["id"], for_bo.json()["conversation"]["id"]
    assert ana_cid != bo_cid
    assert [c["id"] for c in (await ana.get(LIST)).json()["conversations"]] == [ana_cid]
    assert [c["id"] for c in (await bo.get(LIST)).json()["conversations"]] == [bo_cid]

    # And each one's retry still replays their own.
    again = await bo.post(LIST, json=body, headers=key("shared-key"))
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["conversation"]["id"] == bo_cid

    # Two anonymous browsers are the same Anonymous user, yet each one's key is its own.
    first, second = await demo.anonymous(), await demo.anonymous()
    one = await first.post(LIST, json=body, headers=key("anon-key"))
    two = await second.post(LIST, json=body, headers=key("anon-key"))
    assert one.status_code == two.status_code == 201 and "Idempotent-Replayed" not in two.headers
    assert one.json()["conversation"]["id"] != two.json()["conversation"]["id"]
    assert (await second.get(f"{LIST}/{one.json()['conversation']['id']}")).status_code == 404
    for client in (ana, bo, first, second):
        await client.aclose()


async def test_a_blank_key_is_refused(demo):
    ana = await demo.customer("ana@example.com")
    response = await ana.post(LIST, json={"subject": "x", "body": "y"}, headers=key(""))
    assert response.status_code == 422 and response.json()["error"] == "invalid_request", response.text
    assert count(demo.settings.database_url("conversations"), "conversations") == 0
    await ana.aclose()


async def test_a_refused_request_does_not_use_up_its_key(demo):
    ana = await demo.customer("ana@example.com")
    cid = (await start(ana))["id"]
    path = f"{LIST}/{cid}/messages"
    empty = await ana.post(path, json={"body": "   "}, headers=key("fix-and-retry"))
    assert empty.status_code == 422 and empty.json()["error"] == "message_empty", empty.text
    fixed = await ana.post(path, json={"body": "Now with words"}, headers=key("fix-and-retry"))
    assert fixed.status_code == 201, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers
    assert customer_messages(demo, cid) == 2
    await ana.aclose()


async def test_concurrent_retries_with_a_file_keep_one_object(demo):
    ana = await demo.customer("ana@example.com")
    cid = (await start(ana))["id"]
    conv_db = demo.settings.database_url("conversations")
    png = sample("png")
    before = await stored_objects(demo)
    responses = await asyncio.gather(*(
        ana.post(f"{LIST}/{cid}/messages", data={"body": "Screenshot"},
                 files=[("files", ("screen.png", png, "image/png"))], headers=key("file-burst"))
        for _ in range(5)))
    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    attachment_ids = {r.json()["message"]["attachments"][0]["id"] for r in responses}
    assert len(attachment_ids) == 1
    assert count(conv_db, "attachments", "conversation_id = :c", c=cid) == 1
    assert await stored_objects(demo) - before == attachment_ids
    await ana.aclose()


async def test_a_retry_after_the_message_was_redacted_does_not_post_it_again(demo):
    """A client retries (same key, same body) after an agent redacted the message, e.g. a card number.

    Fails today: redaction deletes the stored answer of that key (so its text does not survive
    there), and the retry is then taken as a new request: the redacted text is posted again."""
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    cid = (await start(ana))["id"]
    path = f"{LIST}/{cid}/messages"
    secret_text = {"body": "My card is 4111 1111 1111 1111"}
    first = await ana.post(path, json=secret_text, headers=key("card-1"))
    assert first.status_code == 201, first.text
    mid = first.json()["message"]["id"]
    redacted = await agent.post(f"/api/v1/agent/conversations/{cid}/messages/{mid}/redact")
    assert redacted.status_code == 200, redacted.text

    retry = await ana.post(path, json=secret_text, headers=key("card-1"))
    bodies = [m["body"] for m in (await ana.get(f"{LIST}/{cid}")).json()["conversation"]["messages"]
              if m["kind"] == "message"]
    assert "My card is 4111 1111 1111 1111" not in bodies, (
        f"the retry (HTTP {retry.status_code}, Idempotent-Replayed={retry.headers.get('Idempotent-Replayed')}) "
        f"posted the redacted text again: {bodies}")
    assert customer_messages(demo, cid) == 2
    for client in (ana, agent):
        await client.aclose()
