"""Messages from other channels (WhatsApp, SMS, ...) through the gateway, with real NATS and databases:
a provider's adapter posts each customer message signed with the org's channel secret; it lands once,
in the right conversation, for a customer account created on first contact."""

import asyncio
import json
import time

import httpx
import pytest

from contracts.events import ConversationCreated, UserRegistered
from tests.helpers import count, rows, wait_until
from tests.kit.conversations import make_demo
from tests.kit.streams import stream_events
from tests.kit.channels import channel_secret, deliver, message, signed

CHANNELS = ["whatsapp", "sms"]


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


def stored(settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    conv_db, auth_db = settings.database_url("conversations"), settings.database_url("auth")
    return {"conversations": count(conv_db, "conversations"), "messages": count(conv_db, "messages"),
            "receipts": count(conv_db, "inbound_receipts"), "outbox": count(conv_db, "outbox"),
            "users": count(auth_db, "users")}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_channel_message_creates_the_customer_and_threads_into_one_conversation(demo, channel):
    settings, conv_db = demo.settings, demo.settings.database_url("conversations")
    keys = await channel_secret(demo)
    email = f"first.{channel}@example.com"

    first = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="Where is order 7?"))
    assert first["created_conversation"] is True and first["duplicate"] is False
    cid = first["conversation_id"]

    # The account exists in auth, created once, and announced once.
    assert rows(settings.database_url("auth"), "SELECT email, kind FROM users WHERE email = :e", e=email) == [
        (email, "customer")]
    await wait_until(lambda: count(conv_db, "customers", "email = :e", e=email) == 1)
    registered = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
                  if e.data["email"] == email]
    assert len(registered) == 1 and registered[0].data["method"] == "channel"
    user_id = registered[0].data["user_id"]
    assert rows(conv_db, "SELECT channel, customer_id, subject FROM conversations WHERE id = :c", c=cid) == [
        (channel, user_id, "Order 7 is late")]

    # Same thread: same conversation, new message.
    second = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="Any news?"))
    assert second["conversation_id"] == cid and second["created_conversation"] is False
    assert second["message_id"] != first["message_id"]
    # Another thread of the same customer: its own conversation.
    other = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, thread="thread-2"))
    assert other["created_conversation"] is True and other["conversation_id"] != cid

    registered = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
                  if e.data["email"] == email]
    assert len(registered) == 1, "a second message of the same customer must not register them again"
    assert count(settings.database_url("auth"), "users", "email = :e", e=email) == 1

    # Signed in to the portal with that e-mail, the customer finds the conversation, on its channel.
    customer = await demo.customer(email)
    listed = (await customer.get("/api/v1/portals/demo/conversations")).json()["conversations"]
    assert {c["id"]: c["channel"] for c in listed} == {cid: channel, other["conversation_id"]: channel}
    detail = await customer.get(f"/api/v1/portals/demo/conversations/{cid}")
    assert detail.status_code == 200, detail.text
    assert [m["body"] for m in detail.json()["conversation"]["messages"] if m["kind"] == "message"] == [
        "Where is order 7?", "Any news?"]
    assert {m["channel"] for m in detail.json()["conversation"]["messages"] if m["kind"] == "message"} == {channel}
    only_channel = await customer.get("/api/v1/portals/demo/conversations", params={"channel": channel})
    assert len(only_channel.json()["conversations"]) == 2
    await customer.aclose()


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_repeated_external_message_id_stores_nothing(demo, channel):
    keys = await channel_secret(demo)
    payload = message(f"dup.{channel}@example.com")
    first = await deliver(demo, channel, keys["org_id"], keys["secret"], payload)
    before = stored(demo.settings)

    again = await deliver(demo, channel, keys["org_id"], keys["secret"], payload)
    assert again == {**first, "created_conversation": False, "duplicate": True}
    # A provider retry whose text changed in transit is still the same message.
    changed = await deliver(demo, channel, keys["org_id"], keys["secret"], {**payload, "body": "edited"})
    assert changed["duplicate"] is True and changed["message_id"] == first["message_id"]
    assert stored(demo.settings) == before
    conv_db = demo.settings.database_url("conversations")
    assert [r[0] for r in rows(conv_db, "SELECT body FROM messages WHERE conversation_id = :c AND kind = 'message'",
                               c=first["conversation_id"])] == [payload["body"]]


async def test_thread_and_message_ids_are_per_channel(demo):
    keys = await channel_secret(demo)
    payload = message("both@example.com", thread="shared-thread")
    on_whatsapp = await deliver(demo, "whatsapp", keys["org_id"], keys["secret"], payload)
    on_sms = await deliver(demo, "sms", keys["org_id"], keys["secret"], payload)
    assert on_sms["duplicate"] is False and on_sms["created_conversation"] is True
    assert on_sms["conversation_id"] != on_whatsapp["conversation_id"]
    customer = await demo.customer("both@example.com")
    listed = (await customer.get("/api/v1/portals/demo/conversations")).json()["conversations"]
    assert sorted(c["channel"] for c in listed) == ["sms", "whatsapp"]
    await customer.aclose()


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_message_on_a_closed_thread_reopens_it_where_the_portal_allows(demo, channel):
    keys = await channel_secret(demo)
    email = f"reopen.{channel}@example.com"
    first = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="Broken screen"))
    agent = await demo.staff("agent@example.com", "agent")
    assert (await agent.post(f"/api/v1/agent/conversations/{first['conversation_id']}/close")).status_code == 200

    later = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="It broke again"))
    assert later["created_conversation"] is False and later["conversation_id"] == first["conversation_id"]
    detail = (await agent.get(f"/api/v1/agent/conversations/{first['conversation_id']}")).json()
    assert detail["conversation"]["status"] == "open" and detail["conversation"]["reply_channel"] == channel
    assert [m["body"] for m in detail["messages"] if m["kind"] == "message"] == ["Broken screen", "It broke again"]
    assert [m["event"] for m in detail["messages"] if m["kind"] == "event"][-1] == "reopened"
    await agent.aclose()


@pytest.mark.parametrize("policy", [{"reopen_policy": "new_conversation"}, {"reopen_enabled": False}])
@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_message_on_a_closed_thread_starts_a_linked_conversation(demo, settings, channel, policy):
    await demo.settings_(**policy)
    keys = await channel_secret(demo)
    email = f"closed.{channel}@example.com"
    first = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="Broken screen"))
    agent = await demo.staff("agent@example.com", "agent")
    closed = await agent.post(f"/api/v1/agent/conversations/{first['conversation_id']}/close")
    assert closed.status_code == 200, closed.text

    later = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="It broke again"))
    assert later["created_conversation"] is True and later["conversation_id"] != first["conversation_id"]
    detail = (await agent.get(f"/api/v1/agent/conversations/{later['conversation_id']}")).json()
    assert detail["conversation"]["linked_from"] == first["conversation_id"]
    assert detail["conversation"]["channel"] == channel and detail["conversation"]["status"] == "open"
    old = (await agent.get(f"/api/v1/agent/conversations/{first['conversation_id']}")).json()
    assert old["conversation"]["status"] == "closed"
    assert [m["body"] for m in old["messages"] if m["kind"] == "message"] == ["Broken screen"]

    # The next message on that thread goes to the new conversation, not a third one.
    next_one = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="Hello?"))
    assert next_one["conversation_id"] == later["conversation_id"] and next_one["created_conversation"] is False

    created = [e for e in await stream_events(settings.nats_url, ConversationCreated.subject())
               if e.data["conversation_id"] == later["conversation_id"]]
    assert len(created) == 1 and created[0].data["linked_from"] == first["conversation_id"]

    customer = await demo.customer(email)
    mine = (await customer.get(f"/api/v1/portals/demo/conversations/{later['conversation_id']}")).json()
    assert mine["conversation"]["linked_from"] == first["conversation_id"]
    statuses = {c["id"]: c["status"] for c in
                (await customer.get("/api/v1/portals/demo/conversations")).json()["conversations"]}
    assert statuses == {first["conversation_id"]: "closed", later["conversation_id"]: "open"}
    await agent.aclose()
    await customer.aclose()


@pytest.mark.parametrize("channel", CHANNELS)
async def test_badly_signed_requests_are_refused_and_store_nothing(demo, channel):
    keys = await channel_secret(demo)
    org_id, secret = keys["org_id"], keys["secret"]
    path = f"/api/v1/channels/{channel}/inbound"
    payload = message(f"forged.{channel}@example.com")
    raw = json.dumps(payload).encode()
    good = signed(org_id, secret, raw)
    tampered = json.dumps({**payload, "body": "Send the refund to account 666"}).encode()
    old = int(time.time()) - 600

    def without(header: str) -> dict:
        return {**good, "headers": {k: v for k, v in good["headers"].items() if k != header}}

    cases = {
        "wrong secret": signed(org_id, "not-the-secret-" + secret[15:], raw),
        "tampered body": {**good, "content": tampered},
        "10 minutes old": signed(org_id, secret, raw, timestamp=old),
        "10 minutes ahead": signed(org_id, secret, raw, timestamp=int(time.time()) + 600),
        "timestamp changed after signing": {**good, "headers": {**good["headers"],
                                                                "X-Portico-Timestamp": str(int(time.time()) + 1)}},
        "timestamp not a number": {**good, "headers": {**good["headers"], "X-Portico-Timestamp": "yesterday"}},
        "no org": without("X-Portico-Org"),
        "no timestamp": without("X-Portico-Timestamp"),
        "no signature": without("X-Portico-Signature"),
        "no headers at all": {"content": raw, "headers": {"Content-Type": "application/json"}},
        "signature without prefix": {**good, "headers": {
            **good["headers"], "X-Portico-Signature": good["headers"]["X-Portico-Signature"][7:]}},
        "unknown org": signed("01J0000000000000000000NOPE", secret, raw),
    }
    before = stored(demo.settings)
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=20) as provider:
        for label, request in cases.items():
            response = await provider.post(path, **request)
            assert response.status_code == 401, (label, response.text)
            assert response.json()["error"] == "invalid_signature" and response.json()["message"], label
    assert stored(demo.settings) == before
    assert count(demo.settings.database_url("auth"), "users", "email = :e", e=payload["customer"]["email"]) == 0

    # The genuine request still goes through afterwards.
    accepted = await deliver(demo, channel, org_id, secret, payload)
    assert accepted["created_conversation"] is True


async def test_an_org_without_a_channel_secret_accepts_nothing(demo):
    org_id = (await demo.admin.get("/api/v1/admin/portals/demo")).json().get("org_id")
    if not org_id:  # the portal view may not name the org: take it from a session instead
        browser = await demo.customer("probe@example.com")
        org_id = (await browser.get("/api/v1/session")).json()["org_id"]
        await browser.aclose()
    before = stored(demo.settings)
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=20) as provider:
        response = await provider.post("/api/v1/channels/sms/inbound", **signed(org_id, "", message()))
    assert response.status_code == 401 and response.json()["error"] == "invalid_signature", response.text
    assert stored(demo.settings) == before


async def test_bad_payloads_and_the_portal_channel_are_refused_with_422(demo):
    keys = await channel_secret(demo)
    org_id, secret = keys["org_id"], keys["secret"]
    complete = message("payload@example.com")
    missing = {name: {k: v for k, v in complete.items() if k != name}
               for name in ("portal", "external_message_id", "customer", "body")}
    bodies: dict[str, bytes] = {
        "not json": b'{"portal": "demo", "body": ',
        "a json list": b"[1, 2]",
        "empty body": b"",
        **{f"no {name}": json.dumps(payload).encode() for name, payload in missing.items()},
        "customer without e-mail": json.dumps({**complete, "customer": {"display_name": "X"}}).encode(),
        "unknown field": json.dumps({**complete, "priority": "urgent"}).encode(),
        "empty external id": json.dumps({**complete, "external_message_id": ""}).encode(),
    }
    before = stored(demo.settings)
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=20) as provider:
        for label, raw in bodies.items():
            response = await provider.post("/api/v1/channels/whatsapp/inbound", **signed(org_id, secret, raw))
            assert response.status_code == 422, (label, response.text)
            assert response.json()["error"] == "invalid_request" and response.json()["message"], label
        portal = await provider.post("/api/v1/channels/portal/inbound", **signed(org_id, secret, complete))
        assert portal.status_code == 422, portal.text
        assert portal.json()["error"] == "invalid_request"
        unknown = await provider.post("/api/v1/channels/carrier-pigeon/inbound", **signed(org_id, secret, complete))
        assert unknown.status_code == 422, unknown.text
        assert unknown.json()["error"] == "invalid_request"
    assert stored(demo.settings) == before
    assert count(demo.settings.database_url("auth"), "users", "email = 'payload@example.com'") == 0


@pytest.mark.parametrize("channel", CHANNELS)
async def test_after_a_rotation_the_previous_secret_works_for_a_while_and_the_new_one_at_once(demo, channel):
    first = await channel_secret(demo)
    accepted = await deliver(demo, channel, first["org_id"], first["secret"], message("rot@example.com"))
    assert accepted["duplicate"] is False

    second = await channel_secret(demo)
    assert second["secret"] != first["secret"] and second["org_id"] == first["org_id"]
    with_previous = await deliver(demo, channel, first["org_id"], first["secret"], message("rot@example.com"))
    with_new = await deliver(demo, channel, second["org_id"], second["secret"], message("rot@example.com"))
    assert with_previous["duplicate"] is False and with_new["duplicate"] is False
    assert with_previous["conversation_id"] == with_new["conversation_id"] == accepted["conversation_id"]

    # One more rotation: only the one just before it stays valid; the oldest is gone.
    third = await channel_secret(demo)
    before = stored(demo.settings)
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=20) as provider:
        oldest = await provider.post(f"/api/v1/channels/{channel}/inbound",
                                     **signed(first["org_id"], first["secret"], message("rot@example.com")))
    assert oldest.status_code == 401 and oldest.json()["error"] == "invalid_signature", oldest.text
    assert stored(demo.settings) == before
    await deliver(demo, channel, second["org_id"], second["secret"], message("rot@example.com"))
    await deliver(demo, channel, third["org_id"], third["secret"], message("rot@example.com"))


async def test_only_admins_get_a_channel_secret(demo):
    agent = await demo.staff("agent@example.com", "agent")
    refused = await agent.post("/api/v1/admin/channels/secret")
    assert refused.status_code == 403, refused.text
    customer = await demo.customer("nosy@example.com")
    assert (await customer.post("/api/v1/admin/channels/secret")).status_code in (401, 403)
    anonymous = httpx.AsyncClient(base_url=demo.base_url)
    assert (await anonymous.post("/api/v1/admin/channels/secret")).status_code == 401
    for client in (agent, customer, anonymous):
        await client.aclose()


async def test_a_burst_of_first_messages_from_a_new_customer_makes_one_account_and_one_conversation(demo):
    """A provider delivers several messages of a brand-new customer's thread at once, some twice."""
    settings = demo.settings
    keys = await channel_secret(demo)
    email = "burst@example.com"
    payloads = [message(email, body=f"part {i}") for i in range(6)]
    deliveries = payloads + payloads[:3]  # the first three are retried while still in flight
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=30) as provider:
        responses = await asyncio.gather(*(
            provider.post("/api/v1/channels/whatsapp/inbound", **signed(keys["org_id"], keys["secret"], p))
            for p in deliveries))
    assert [r.status_code for r in responses] == [200] * len(deliveries), [r.text for r in responses]
    answers = [r.json() for r in responses]
    assert len({a["conversation_id"] for a in answers}) == 1
    assert sum(a["created_conversation"] for a in answers) == 1
    assert len({a["message_id"] for a in answers}) == len(payloads)

    conv_db = settings.database_url("conversations")
    assert count(settings.database_url("auth"), "users", "email = :e", e=email) == 1
    assert count(conv_db, "conversations") == 1
    assert sorted(r[0] for r in rows(conv_db, "SELECT body FROM messages WHERE kind = 'message'")) == sorted(
        p["body"] for p in payloads)
    registered = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
                  if e.data["email"] == email]
    assert len(registered) == 1


async def test_the_customer_is_known_by_e_mail_whatever_its_case(demo):
    keys = await channel_secret(demo)
    first = await deliver(demo, "sms", keys["org_id"], keys["secret"], message("Mixed.Case@Example.COM"))
    second = await deliver(demo, "sms", keys["org_id"], keys["secret"], message("mixed.case@example.com"))
    assert second["conversation_id"] == first["conversation_id"] and second["created_conversation"] is False
    assert rows(demo.settings.database_url("auth"), "SELECT email FROM users WHERE lower(email) = :e",
                e="mixed.case@example.com") == [("mixed.case@example.com",)]


async def test_one_thread_id_of_two_customers_is_two_conversations(demo):
    keys = await channel_secret(demo)
    ana = await deliver(demo, "whatsapp", keys["org_id"], keys["secret"], message("ana.t@example.com", thread="t-1"))
    bo = await deliver(demo, "whatsapp", keys["org_id"], keys["secret"], message("bo.t@example.com", thread="t-1"))
    assert bo["created_conversation"] is True and bo["conversation_id"] != ana["conversation_id"]
    browser = await demo.customer("bo.t@example.com")
    assert [c["id"] for c in (await browser.get("/api/v1/portals/demo/conversations")).json()["conversations"]] == [
        bo["conversation_id"]]
    assert (await browser.get(f"/api/v1/portals/demo/conversations/{ana['conversation_id']}")).status_code == 404
    await browser.aclose()


async def test_messages_the_product_cannot_take_are_refused_and_create_no_account(demo):
    keys = await channel_secret(demo)
    staff = await demo.staff("agent@example.com", "agent")
    await staff.aclose()
    cases = [
        (message("long@example.com", body="x" * 10_241), 422, "message_too_long"),
        (message("empty@example.com", body="   "), 422, "message_empty"),
        (message("nowhere@example.com", portal="no-such-portal"), 404, "unknown_portal"),
        (message("not-an-email"), 422, "invalid_email"),
        (message("agent@example.com"), 422, "invalid_email"),  # a staff account is not a customer
    ]
    before = stored(demo.settings)
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=20) as provider:
        for payload, status, code in cases:
            response = await provider.post("/api/v1/channels/sms/inbound",
                                           **signed(keys["org_id"], keys["secret"], payload))
            assert response.status_code == status, (payload["customer"], response.text)
            assert response.json()["error"] == code and response.json()["message"], response.text
    assert stored(demo.settings) == before
    # Exactly 10,240 characters is fine.
    assert (await deliver(demo, "sms", keys["org_id"], keys["secret"],
                          message("limit@example.com", body="y" * 10_240)))["duplicate"] is False


async def test_the_previous_secret_stops_working_when_its_grace_ends(demo):
    from datetime import UTC, datetime, timedelta

    from sqlmodel import Session

    from services.conversations.models import ChannelSecret
    from services.runtime.db import make_engine

    first = await channel_secret(demo)
    second = await channel_secret(demo)
    await deliver(demo, "sms", first["org_id"], first["secret"], message("grace@example.com"))
    # A day later (the grace period), as the clock would have it:
    engine = make_engine(demo.settings.database_url("conversations"))
    with Session(engine) as session:
        row = session.get(ChannelSecret, first["org_id"])
        assert row is not None and row.previous_until is not None
        assert timedelta(hours=23) < row.previous_until - datetime.now(UTC) <= timedelta(hours=24)
        row.previous_until = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    engine.dispose()

    before = stored(demo.settings)
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=20) as provider:
        late = await provider.post("/api/v1/channels/sms/inbound",
                                   **signed(first["org_id"], first["secret"], message("grace@example.com")))
    assert late.status_code == 401 and late.json()["error"] == "invalid_signature", late.text
    assert stored(demo.settings) == before
    await deliver(demo, "sms", second["org_id"], second["secret"], message("grace@example.com"))
