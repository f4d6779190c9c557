"""`portico events export` writes a stream as a log (one stored envelope a line, in stream order, from a
sequence or a time on) and `portico events import` puts a log into another server: each event stored once
however often it is imported within the duplicate window, a bad line refused with its number before
anything is published, an unknown stream named with the known ones."""

import asyncio
import json
import os
import sys
from pathlib import Path

import nats
import pytest

from contracts.envelope import EventEnvelope
from contracts.events import UserRegistered
from contracts.subjects import STREAMS
from services.runtime.nats import EmbeddedNats, ensure_streams
from tests.kit.events import publish, user_registered

ROOT = Path(__file__).resolve().parents[2]


async def portico(*args: str, nats_url: str, data_dir: Path) -> tuple[int, str, str]:
    """Run `portico ...` in a subprocess without blocking the test's event loop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(PORTICO_DATA_DIR=str(data_dir), PORTICO_NATS_URL=nats_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def stored(nats_url: str, stream: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await nc.close()


@pytest.fixture
async def auth_events(nats_server) -> list[EventEnvelope]:
    """Four accounts registered on the AUTH stream, as the auth service's relay publishes them."""
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc.jetstream())
    finally:
        await nc.close()
    envelopes = [user_registered(f"user{i}@example.com") for i in range(4)]
    await publish(nats_server.url, envelopes)
    return envelopes


async def test_export_writes_each_stored_event_in_stream_order(nats_server, auth_events, tmp_path):
    code, out, err = await portico("events", "export", "--stream", "AUTH", nats_url=nats_server.url,
                                   data_dir=tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert [EventEnvelope.model_validate_json(line) for line in lines] == auth_events
    assert lines[0] == auth_events[0].model_dump_json()  # the data as stored, byte for byte
    assert "exported 4 events" in err

    code, out, err = await portico("events", "export", "--stream", "auth", "--since", "3", nats_url=nats_server.url,
                                   data_dir=tmp_path)
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [e.id for e in auth_events[2:]]

    for since, expected in (("2000-01-01T00:00:00Z", 4), ("2999-01-01T00:00:00+01:00", 0), ("99", 0)):
        code, out, err = await portico("events", "export", "--stream", "AUTH", "--since", since,
                                       nats_url=nats_server.url, data_dir=tmp_path)
        assert code == 0, err
        assert len(out.splitlines()) == expected, since


async def test_export_refuses_unknown_streams_and_bad_starts(nats_server, auth_events, tmp_path):
    code, out, err = await portico("events", "export", "--stream", "BILLING", nats_url=nats_server.url,
                                   data_dir=tmp_path)
    assert (code, out) == (1, "")
    assert f"unknown stream 'BILLING'; one of {', '.join(STREAMS.values())}" in err
    for since in ("yesterday", "2026-11-01T10:00:00", "0"):
        code, out, err = await portico("events", "export", "--stream", "AUTH", "--since", since,
                                       nats_url=nats_server.url, data_dir=tmp_path)
        assert (code, out) == (1, "") and "--since" in err and "Traceback" not in err


async def test_import_stores_each_event_once_and_exports_the_same_log(nats_server, auth_events, tmp_path):
    code, log_text, err = await portico("events", "export", "--stream", "AUTH", nats_url=nats_server.url,
                                        data_dir=tmp_path)
    assert code == 0, err
    log = tmp_path / "auth.jsonl"
    log.write_text(log_text)

    other = EmbeddedNats(tmp_path / "other-nats").start()  # the test server a log is replayed into
    try:
        code, out, err = await portico("events", "import", str(log), "--url", other.url, nats_url=nats_server.url,
                                       data_dir=tmp_path)
        assert code == 0, err
        assert f"imported 4 events from {log}: 4 stored, 0 already there" in out
        code, out, err = await portico("events", "import", str(log), "--url", other.url, nats_url=nats_server.url,
                                       data_dir=tmp_path)
        assert code == 0, err
        assert "4 stored" not in out and "0 stored, 4 already there" in out  # within the duplicate window
        assert await stored(other.url, "AUTH") == 4
        code, again, err = await portico("events", "export", "--stream", "AUTH", nats_url=other.url,
                                         data_dir=tmp_path)
        assert code == 0 and again == log_text
    finally:
        other.stop()


async def test_import_refuses_a_log_with_a_bad_line_and_stores_nothing(nats_server, tmp_path):
    good = [user_registered("ana@example.com").model_dump_json(), ""]
    cases = {
        "not JSON": (good + ["{not json"], "line 3: not an event envelope"),
        "no envelope": (good + ['{"hello": "world"}'], "line 3: not an event envelope"),
        "unknown event": (good + [user_registered("bo@example.com").model_copy(update={"type": "UserVanished"})
                                  .model_dump_json()], "line 3: unknown event UserVanished v1"),
    }
    for name, (lines, message) in cases.items():
        log = tmp_path / f"{name}.jsonl"
        log.write_text("\n".join(lines) + "\n")
        code, out, err = await portico("events", "import", str(log), nats_url=nats_server.url, data_dir=tmp_path)
        assert (code, out) == (1, ""), name
        assert message in err and "nothing imported" in err and "Traceback" not in err, err
    assert await stored(nats_server.url, "AUTH") == 0  # the good first line was not published either


async def test_an_imported_event_goes_to_its_own_subject(nats_server, tmp_path):
    envelope = user_registered("cy@example.com")
    log = tmp_path / "one.jsonl"
    log.write_text(envelope.model_dump_json() + "\n")
    code, out, err = await portico("events", "import", str(log), nats_url=nats_server.url, data_dir=tmp_path)
    assert code == 0, err
    nc = await nats.connect(nats_server.url)
    try:
        msg = await nc.jetstream().get_last_msg("AUTH", UserRegistered.subject())
        assert msg.headers and msg.headers["Nats-Msg-Id"] == envelope.id
        assert EventEnvelope.model_validate_json(msg.data) == envelope
    finally:
        await nc.close()


@pytest.mark.parametrize("command", [["events", "export", "--stream", "AUTH"], ["status"], ["status", "--json"]],
                         ids=" ".join)
async def test_commands_say_they_cannot_reach_nats_and_exit(command, tmp_path):
    from services.runtime.nats import free_port

    down = f"nats://127.0.0.1:{free_port()}"
    code, out, err = await portico(*command, nats_url=down, data_dir=tmp_path)
    assert (code, out) == (1, "")
    assert f"cannot reach NATS at {down}" in err and "Traceback" not in err


async def test_export_of_a_stream_not_created_yet_says_so(nats_server, tmp_path):
    code, out, err = await portico("events", "export", "--stream", "KB", nats_url=nats_server.url, data_dir=tmp_path)
    assert (code, out) == (1, "") and "stream KB does not exist on this server yet" in err
