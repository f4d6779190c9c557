"""The event backbone's guarantees, against a real nats-server and real databases:
nothing lost between commit and publish, effects exactly once, poison events dead-lettered,
replicas sharing work, and services riding out a NATS restart."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import nats
from nats.aio.msg import Msg

from contracts.envelope import EventEnvelope, new_id
from contracts.events import UserRegistered
from contracts.subjects import DLQ_STREAM, STREAMS
from services.auth import email_access
from services.auth.app import build as build_auth
from services.conversations.app import build as build_conversations
from services.runtime.db import session_scope
from services.runtime.inbox import Subscription
from services.runtime.service import Service
from tests.helpers import count, wait_for_http, wait_until
from tests.kit.seeding import EMAIL_PATH, seed
from tests.kit.events import publish, user_registered

# `seed` registers the demo admin and the demo portal's Anonymous user: two UserRegistered events.
SEED_EVENTS = 2


async def stream_count(nats_url: str, stream: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


def start_email_access_directly(auth: Service, email: str) -> None:
    """The transaction of e-mail access start (account, event, code), without RPC (used while NATS is down)."""
    with session_scope(auth.engine) as session:
        email_access.issue_code(session, "demo", email)
    auth.relay.wake()


async def test_event_committed_while_nats_is_down_is_delivered_after_recovery(
        settings, nats_server, start_service):
    seed(settings)
    auth = await start_service(build_auth, settings)
    await start_service(build_conversations, settings)
    auth_db, conv_db = settings.database_url("auth"), settings.database_url("conversations")

    nats_server.stop()
    start_email_access_directly(auth, "down@example.com")
    await asyncio.sleep(1.0)
    assert count(auth_db, "outbox", "published_at IS NULL") >= 1  # committed, not yet published

    nats_server.start()
    await wait_until(lambda: count(conv_db, "customers", "email = 'down@example.com'") == 1, timeout=30)
    await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0, timeout=30)
    await asyncio.sleep(0.5)
    assert count(conv_db, "customers", "email = 'down@example.com'") == 1
    # The seeded accounts + this customer: one event each, however many times the relay retried.
    assert await stream_count(settings.nats_url, STREAMS["auth"]) == SEED_EVENTS + 1


async def test_relay_dead_between_commit_and_publish_loses_nothing(settings, start_service):
    seed(settings)
    auth_db, conv_db = settings.database_url("auth"), settings.database_url("conversations")
    await start_service(build_conversations, settings)
    dead_relay = await start_service(build_auth, settings, relay_enabled=False)
    start_email_access_directly(dead_relay, "relay@example.com")
    await dead_relay.stop()
    assert count(auth_db, "outbox", "published_at IS NULL") == SEED_EVENTS + 1  # seeded accounts and this customer

    await start_service(build_auth, settings)  # the restarted process
    await wait_until(lambda: count(conv_db, "customers", "email = 'relay@example.com'") == 1, timeout=15)
    await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0)
    assert await stream_count(settings.nats_url, STREAMS["auth"]) == SEED_EVENTS + 1


async def test_lost_publish_ack_is_resent_once_in_effect(settings, start_service, monkeypatch):
    """The relay publishes, JetStream stores, then the relay dies before marking the row: it re-sends."""
    seed(settings)
    auth_db, conv_db = settings.database_url("auth"), settings.database_url("conversations")
    auth = await start_service(build_auth, settings, relay_enabled=False)
    await start_service(build_conversations, settings)
    start_email_access_directly(auth, "lostack@example.com")

    original = auth.relay._mark_published
    calls = {"n": 0}

    def crash_first_time(seqs: list[int]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("process died before marking the rows published")
        original(seqs)

    monkeypatch.setattr(auth.relay, "_mark_published", crash_first_time)
    task = asyncio.create_task(auth.relay.run())
    try:
        await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0, timeout=15)
    finally:
        task.cancel()
    assert calls["n"] >= 2  # the rows really were sent twice
    await wait_until(lambda: count(conv_db, "customers", "email = 'lostack@example.com'") == 1)
    assert await stream_count(settings.nats_url, STREAMS["auth"]) == SEED_EVENTS + 1  # de-duplicated by Nats-Msg-Id
    await asyncio.sleep(0.5)
    assert count(conv_db, "customers", "email = 'lostack@example.com'") == 1


async def test_same_event_delivered_again_has_its_effect_once(settings, start_service, monkeypatch):
    settings = settings.model_copy(update={"consumer_ack_wait": 1.0})
    conv_db = settings.database_url("conversations")
    conversations = await start_service(build_conversations, settings)
    subscription = conversations.consumers[0].subscription
    applied: list[str] = []
    record = subscription.handlers[UserRegistered]

    def counting(session, event, envelope):  # type: ignore[no-untyped-def]
        applied.append(envelope.id)
        record(session, event, envelope)

    subscription.handlers[UserRegistered] = counting

    # 1. Re-published outside JetStream's duplicate window (a different Nats-Msg-Id): the inbox catches it.
    first = user_registered("twice@example.com")
    await publish(settings.nats_url, [first])
    await publish(settings.nats_url, [first], msg_id_suffix="-again")
    await wait_until(lambda: count(conv_db, "inbox") == 1)
    await asyncio.sleep(0.5)
    assert applied == [first.id]

    # 2. Redelivery after a lost ack: the first ack never reaches the server, it sends the event again.
    real_ack = Msg.ack
    dropped = {"n": 0}

    async def lose_first_ack(msg: Msg) -> None:
        if dropped["n"] == 0:
            dropped["n"] += 1
            return
        await real_ack(msg)

    monkeypatch.setattr(Msg, "ack", lose_first_ack)
    second = user_registered("redelivered@example.com")
    await publish(settings.nats_url, [second])
    await wait_until(lambda: dropped["n"] == 1)
    await asyncio.sleep(2.5)  # ack_wait is 1 s: the server has redelivered by now
    info = await stream_info_consumer(settings.nats_url, conversations.consumers[0].name)
    # Each delivery takes a consumer sequence number: one more than stream messages means one redelivery.
    assert info.delivered.consumer_seq == info.delivered.stream_seq + 1
    assert applied == [first.id, second.id]

    # 3. Replay of the whole stream: nothing applied twice; a rebuild gives the same state.
    assert await conversations.replay() == 0
    assert applied == [first.id, second.id]
    assert await conversations.replay(rebuild=True) == 2
    assert count(conv_db, "customers") == 2 and count(conv_db, "inbox") == 2


async def stream_info_consumer(nats_url: str, durable: str):  # type: ignore[no-untyped-def]
    nc = await nats.connect(nats_url)
    try:
        return await nc.jetstream().consumer_info(STREAMS["auth"], durable)
    finally:
        await nc.close()


async def test_failing_event_goes_to_dead_letter_and_the_rest_still_flow(settings, start_service):
    applied: list[str] = []
    tries: list[str] = []

    def fragile(session, event: UserRegistered, envelope: EventEnvelope) -> None:  # type: ignore[no-untyped-def]
        tries.append(event.email)
        if event.email == "poison@example.com":
            raise RuntimeError("template for this customer is broken")
        applied.append(event.email)

    def build(settings, **overrides):  # type: ignore[no-untyped-def]
        return Service("notifications", settings, subscriptions=(Subscription("auth", {UserRegistered: fragile}),),
                       **overrides)

    consumer_service = await start_service(build, settings)
    poison = user_registered("poison@example.com")
    later = [user_registered(f"later{i}@example.com") for i in range(5)]
    await publish(settings.nats_url, [poison, *later])

    await wait_until(lambda: consumer_service.consumers[0].dead_lettered_total == 1, timeout=20)
    assert tries.count("poison@example.com") == settings.max_deliver
    assert sorted(applied) == sorted(e.data["email"] for e in later)
    assert await stream_count(settings.nats_url, DLQ_STREAM) == 1

    # Events after it keep flowing.
    after = user_registered("after@example.com")
    await publish(settings.nats_url, [after])
    await wait_until(lambda: "after@example.com" in applied)

    # Operators see it, with its error, in `portico dlq list`.
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "dlq", "list", "--json"], capture_output=True, text=True,
        env={**os.environ, "PORTICO_NATS_URL": settings.nats_url}, timeout=60, check=True)
    listed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(listed) == 1
    row = listed[0]
    assert row["event_id"] == poison.id
    assert row["consumer"] == consumer_service.consumers[0].name
    assert row["subject"] == UserRegistered.subject()
    assert "template for this customer is broken" in row["error"]
    assert row["deliveries"] == str(settings.max_deliver)
    human = subprocess.run([sys.executable, "-m", "services.cli", "dlq", "list"], capture_output=True, text=True,
                           env={**os.environ, "PORTICO_NATS_URL": settings.nats_url}, timeout=60, check=True)
    assert poison.id in human.stdout and "template for this customer is broken" in human.stdout


async def test_undecodable_event_is_dead_lettered_at_once(settings, start_service):
    conversations = await start_service(build_conversations, settings)
    nc = await nats.connect(settings.nats_url)
    try:
        await nc.jetstream().publish(UserRegistered.subject(), b"{not json", headers={"Nats-Msg-Id": "garbage-1"})
    finally:
        await nc.close()
    await wait_until(lambda: conversations.consumers[0].dead_lettered_total == 1)
    good = user_registered("fine@example.com")
    await publish(settings.nats_url, [good])
    await wait_until(lambda: count(settings.database_url("conversations"), "customers") == 1)


async def test_two_replicas_handle_every_event_once(settings, start_service):
    settings = settings.model_copy(update={"consumer_batch": 10})
    conv_db = settings.database_url("conversations")
    replicas = [await start_service(build_conversations, settings) for _ in range(2)]
    handled: dict[int, list[str]] = {0: [], 1: []}
    for index, replica in enumerate(replicas):
        subscription = replica.consumers[0].subscription
        original = subscription.handlers[UserRegistered]

        def counting(session, event, envelope, _index=index, _original=original):  # type: ignore[no-untyped-def]
            handled[_index].append(envelope.id)
            _original(session, event, envelope)

        # Each replica has its own Subscription object: wrap each one's handler.
        replica.consumers[0].subscription = Subscription(subscription.source, {UserRegistered: counting},
                                                         consumer=subscription.consumer)
    envelopes = [user_registered(f"r{i}@example.com") for i in range(300)]
    await publish(settings.nats_url, envelopes)
    await wait_until(lambda: count(conv_db, "inbox") == 300, timeout=60)
    await asyncio.sleep(0.5)
    all_handled = handled[0] + handled[1]
    assert len(all_handled) == 300 and set(all_handled) == {e.id for e in envelopes}
    assert handled[0] and handled[1], "both replicas took part"
    assert count(conv_db, "customers") == 300


async def test_older_version_never_overwrites_newer(settings, start_service):
    conv_db = settings.database_url("conversations")
    await start_service(build_conversations, settings)
    user_id = new_id()
    newer = user_registered("new@example.com", version=2, user_id=user_id)
    older = user_registered("old@example.com", version=1, user_id=user_id)
    await publish(settings.nats_url, [newer, older])
    await wait_until(lambda: count(conv_db, "inbox") == 2)
    assert count(conv_db, "customers", "email = 'new@example.com' AND version = 2") == 1
    assert count(conv_db, "customers", "email = 'old@example.com'") == 0


async def test_services_reconnect_after_nats_restart_and_lose_nothing(settings, nats_server, stack, gateway):
    seed(settings)
    conv_db = settings.database_url("conversations")
    assert (await gateway.client.post(EMAIL_PATH, json={"email": "before@example.com"})).status_code == 202
    await wait_until(lambda: count(conv_db, "customers", "email = 'before@example.com'") == 1)

    nats_server.stop()
    # Committed while the server is away: waits in the outbox.
    start_email_access_directly(stack["auth"], "during@example.com")
    await asyncio.sleep(1.0)
    nats_server.start()

    await wait_for_http(gateway, "/healthz", 200, timeout=30)
    await wait_for_http(gateway, "/readyz", 200, timeout=30)
    response = await gateway.client.post(EMAIL_PATH, json={"email": "after@example.com"})
    assert response.status_code == 202, response.text
    for email in ("before@example.com", "during@example.com", "after@example.com"):
        await wait_until(lambda e=email: count(conv_db, "customers", "email = :e", e=e) == 1, timeout=30)
    assert count(conv_db, "customers", "kind = 'customer'") == 3


async def test_outbox_keeps_unpublished_rows_and_prunes_old_published_ones(settings, start_service):
    from datetime import timedelta

    from sqlalchemy import text

    from services.runtime.db import make_engine

    seed(settings)
    auth_db = settings.database_url("auth")
    auth = await start_service(build_auth, settings, relay_enabled=False)
    start_email_access_directly(auth, "old@example.com")
    start_email_access_directly(auth, "new@example.com")
    await auth.relay.publish_pending()
    start_email_access_directly(auth, "pending@example.com")  # not published yet
    engine = make_engine(auth_db)
    with engine.begin() as conn:  # the first two published rows are 8 days old
        conn.execute(text("UPDATE outbox SET published_at = :t WHERE seq IN "
                          "(SELECT seq FROM outbox WHERE published_at IS NOT NULL ORDER BY seq LIMIT 2)"),
                     {"t": datetime.now(UTC) - timedelta(days=8)})
    engine.dispose()
    assert auth.relay.prune() == 2
    assert count(auth_db, "outbox") == SEED_EVENTS + 1  # the recent published rows and the pending one
    assert count(auth_db, "outbox", "published_at IS NULL") == 1
