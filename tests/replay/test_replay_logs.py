"""Every consumer replays the v1 logs recorded from a live system (`logs/*-v1.jsonl`, see README.md):
a fresh service gets the expected rows and a second replay changes nothing; and on a live system
`portico replay <service> --rebuild` rebuilds exactly the state the consumers built as events came."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from contracts.envelope import EventEnvelope
from services.conversations.app import build as build_conversations
from services.notifications.app import build as build_notifications
from services.runtime.inbox import decode_envelopes
from tests.helpers import rows, table_counts
from tests.kit.email import demo, settings, sink  # noqa: F401
from tests.replay.scenario import (
    ANA_REPLY,
    ANA_SUBJECT,
    FIRST_ANSWER,
    LINA_SUBJECT,
    SERVICES,
    caught_up,
    drive,
    read_models,
)

LOGS = Path(__file__).parent / "logs"
ROOT = Path(__file__).resolve().parents[2]
BUILDS = {"conversations": build_conversations, "notifications": build_notifications}
# Every durable consumer (`Subscription(...)` in services/*/app.py): the service, the stream it reads.
CONSUMERS = [("conversations", "auth"), ("conversations", "notifications"),
             ("notifications", "auth"), ("notifications", "conversations")]


def v1_log(stream: str) -> list[EventEnvelope]:
    return decode_envelopes((LOGS / f"{stream}-v1.jsonl").read_text().splitlines())


def ids(log: list[EventEnvelope]) -> dict[str, str]:
    """The recorded accounts' and conversations' ids, by e-mail address and by subject."""
    found = {e.data["email"]: e.data["user_id"] for e in log if e.type == "UserRegistered"}
    found |= {e.data["conversation_subject"]: e.data["conversation_id"] for e in log if e.type == "ConversationCreated"}
    return found


def replay_log(service, source: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Apply the v1 log of `source` to the service's consumer of it, as `portico replay` reads the stream
    (only the subjects that consumer follows), twice: (applied the first time, applied the second time)."""
    [consumer] = [c for c in service.consumers if c.subscription.source == source]
    envelopes = [e for e in v1_log(source) if e.subject in consumer.subscription.subjects]
    return consumer.apply(envelopes), consumer.apply(envelopes)


def test_the_v1_logs_cover_every_consumer():
    for service, source in CONSUMERS:
        [subscription] = [s for s in (c.subscription for c in BUILDS[service](_offline()).consumers)
                          if s.source == source]
        recorded = {(e.type, e.version) for e in v1_log(source)}
        handled = {(event.type_name(), event.version) for event in subscription.handlers}
        # MessagePosted of a redacted message is erased from the stream; the others are there.
        assert handled <= recorded | {("MessagePosted", 1)}, (service, source, handled - recorded)
    assert ("MessagePosted", 1) in {(e.type, e.version) for e in v1_log("conversations")}


def _offline():  # type: ignore[no-untyped-def]
    from services.runtime.settings import Settings

    return Settings(**{f"{s}_database_url": "sqlite://" for s in SERVICES})


def test_v1_auth_log_into_fresh_consumers(settings):  # noqa: F811
    log, expected = v1_log("auth"), {
        ("anonymous+demo@portal.invalid", "Anonymous user", "anonymous", 1),
        ("admin@example.com", "Demo Admin", "staff", 1), ("ana@example.com", "ana", "customer", 1),
        ("agent@example.com", "Agent", "staff", 1), ("lina@example.com", "Lina", "customer", 1)}
    for name, table in (("conversations", "customers"), ("notifications", "customer_addresses")):
        service = BUILDS[name](settings)
        try:
            # Five accounts; conversations also follows the identity linked (nothing to link in a fresh one).
            assert replay_log(service, "auth") == ({"conversations": 6, "notifications": 5}[name], 0)
            url = settings.database_url(name)
            assert set(rows(url, f"SELECT email, display_name, kind, version FROM {table}")) == expected
            by_email = dict(rows(url, f"SELECT email, id FROM {table}"))
            assert by_email["lina@example.com"] == ids(log)["lina@example.com"]
            assert rows(url, f"SELECT DISTINCT org_id FROM {table}") == [(log[0].org_id,)]
        finally:
            service.engine.dispose()


def test_v1_conversations_log_into_fresh_notifications(settings):  # noqa: F811
    service = build_notifications(settings)
    url = settings.database_url("notifications")
    known = ids(v1_log("auth")) | ids(v1_log("conversations"))
    lina, ana = known[LINA_SUBJECT], known[ANA_SUBJECT]
    try:
        assert replay_log(service, "conversations") == (8, 0)
        before = table_counts(url)
        assert rows(url, "SELECT id, portal, customer_id, subject, version FROM conversation_addresses ORDER BY subject")\
            == [(lina, "demo", known["lina@example.com"], LINA_SUBJECT, 3),  # Lina took it over (ReporterChanged)
                (ana, "demo", known["ana@example.com"], ANA_SUBJECT, 4)]
        assert set(rows(url, "SELECT conversation_id, customer_id FROM participants")) == {
            (lina, known["anonymous+demo@portal.invalid"]), (lina, known["lina@example.com"]),
            (ana, known["ana@example.com"])}
        # One e-mail for the agent's answer; Ana's own messages make none.
        assert rows(url, "SELECT conversation_id, recipient_id, body, status, kind FROM notifications") == [
            (ana, known["ana@example.com"], FIRST_ANSWER, "pending", "email")]
        assert before["thread_messages"] == 1  # Ana's e-mail reply: the next answer is threaded under it
        assert replay_log(service, "conversations") == (0, 0)
        assert table_counts(url) == before
    finally:
        service.engine.dispose()


def test_v1_notifications_log_into_fresh_conversations(settings):  # noqa: F811
    service = build_conversations(settings)
    url = settings.database_url("conversations")
    try:
        assert replay_log(service, "notifications") == (2, 0)  # EmailReceived, EmailBounced
        before = table_counts(url)
        # The reply's conversation is not in this fresh database: the e-mail starts a new one, once.
        assert rows(url, "SELECT m.body, m.channel, c.channel, c.subject FROM messages m "
                         "JOIN conversations c ON c.id = m.conversation_id WHERE m.kind = 'message'") == [
            (ANA_REPLY, "email", "email", "Re: Re: Invoice is wrong")]
        assert rows(url, "SELECT count(*) FROM inbound_receipts") == [(1,)]
        assert rows(url, "SELECT count(*) FROM messages WHERE event = 'email_bounced'") == [(0,)]  # unknown here
        assert replay_log(service, "notifications") == (0, 0)
        assert table_counts(url) == before
    finally:
        service.engine.dispose()


async def portico_replay(service: str, settings) -> str:  # type: ignore[no-untyped-def]  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update({"PORTICO_NATS_URL": settings.nats_url, "PORTICO_DATA_DIR": str(settings.data_dir),
                f"PORTICO_{service.upper()}_DATABASE_URL": settings.database_url(service)})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "replay", service, "--rebuild", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.parametrize("service", ["conversations", "notifications"])
async def test_rebuilt_from_the_streams_equals_the_live_state(demo, sink, service):  # noqa: F811
    await drive(demo, sink)
    live = read_models(demo.settings, service)
    counts = {s: table_counts(demo.settings.database_url(s)) for s in SERVICES}
    assert all(live.values()), live  # something to rebuild in every read model

    out = await portico_replay(service, demo.settings)
    assert f"{service}: " in out and "events applied" in out
    await caught_up(demo.settings)
    rebuilt = read_models(demo.settings, service)
    assert {table: (live[table], rows) for table, rows in rebuilt.items() if rows != live[table]} == {}
    after = {s: table_counts(demo.settings.database_url(s)) for s in SERVICES}
    # The inbox is the replay's own bookkeeping: rebuilt from the events still in the streams (one fewer
    # for notifications: the redacted message's event was erased).
    doubled = {(s, t): (counts[s][t], n) for s in SERVICES for t, n in after[s].items()
               if n != counts[s][t] and t != "inbox"}
    assert doubled == {}
