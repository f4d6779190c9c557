"""Read models rebuilt from recorded event logs: the same state from a file, from the streams,
and after replaying twice."""

import os
import subprocess
import sys
from pathlib import Path

from contracts.envelope import event_class
from services.conversations.app import build as build_conversations
from services.runtime.inbox import decode_envelopes
from tests.helpers import rows

RECORDED = Path(__file__).parent / "auth_events.jsonl"

EXPECTED_CUSTOMERS = [
    ("01JD000000000000000000USR1", "ana@example.com", "Ana", "customer", 1),
    ("01JD000000000000000000USR2", "admin@example.com", "Demo Admin", "staff", 1),
    ("01JD000000000000000000USR3", "bo.new@example.com", "Bo", "customer", 2),
]


def customers(url: str) -> list[tuple]:
    return rows(url, "SELECT id, email, display_name, kind, version FROM customers ORDER BY id")


def test_recorded_log_replayed_into_a_fresh_service(settings):
    service = build_conversations(settings)
    envelopes = decode_envelopes(RECORDED.read_text().splitlines())
    consumer = service.consumers[0]
    assert consumer.apply(envelopes) == 5  # six lines, one of them a duplicate
    url = settings.database_url("conversations")
    assert customers(url) == EXPECTED_CUSTOMERS
    assert consumer.apply(envelopes) == 0  # replaying again changes nothing
    assert customers(url) == EXPECTED_CUSTOMERS
    service.engine.dispose()


async def test_portico_replay_rebuilds_from_the_streams(settings, nats_server):
    envelopes = [e for e in decode_envelopes(RECORDED.read_text().splitlines()) if event_class(e.type, e.version)]
    service = build_conversations(settings)
    await service.broker.connect()
    try:
        from services.runtime.nats import ensure_streams
        js = service.broker.config.connection_state.stream
        await ensure_streams(js)
        for envelope in envelopes:
            await js.publish(envelope.subject, envelope.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": envelope.id})  # the duplicate is dropped here
    finally:
        await service.broker.stop()
        service.engine.dispose()

    url = settings.database_url("conversations")
    env = {**os.environ, "PORTICO_NATS_URL": nats_server.url, "PORTICO_CONVERSATIONS_DATABASE_URL": url,
           "PORTICO_DATA_DIR": str(settings.data_dir)}
    for _ in range(2):  # a rebuild, then a rebuild again: same state both times
        result = subprocess.run([sys.executable, "-m", "services.cli", "replay", "conversations", "--rebuild"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "conversations: 4 events applied" in result.stdout
        assert customers(url) == EXPECTED_CUSTOMERS
    gap_fill = subprocess.run([sys.executable, "-m", "services.cli", "replay", "conversations"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert "conversations: 0 events applied" in gap_fill.stdout
    assert customers(url) == EXPECTED_CUSTOMERS
