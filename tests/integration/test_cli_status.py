"""`portico status`: every service with its replicas, database and outbox backlog, each durable consumer's
lag, the dead letters and failed notifications on one screen (or one JSON object); exit 0 when every
service answers, 1 with the missing service named when one is down."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from contracts.subjects import SERVICES
from services.auth.app import build as auth
from services.conversations.app import build as conversations
from services.kb.app import build as kb
from services.notifications.app import build as notifications
from services.runtime.nats import EmbeddedNats
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
BUILDS = {"auth": auth, "conversations": conversations, "notifications": notifications, "kb": kb}


def environment(nats_url: str, data_dir: Path, monitor: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(PORTICO_DATA_DIR=str(data_dir), PORTICO_NATS_URL=nats_url)
    if monitor:
        env["PORTICO_NATS_MONITOR_URL"] = monitor
    return env


async def portico_status(*args: str, nats_url: str, data_dir: Path,
                         monitor: str | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "status", *args, cwd=ROOT, env=environment(nats_url, data_dir, monitor),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
def monitored_nats(tmp_path):  # type: ignore[no-untyped-def]
    """A nats-server with its monitoring endpoint, where replicas are counted."""
    server = EmbeddedNats(tmp_path / "nats-monitored", http_port=0).start()
    yield server
    server.stop()


@pytest.fixture
def settings(monitored_nats, databases, tmp_path):  # type: ignore[no-untyped-def]
    return make_settings(monitored_nats.url, databases, tmp_path / "var")


async def test_status_shows_every_service_its_replicas_and_each_consumers_lag(settings, monitored_nats,
                                                                              start_service, tmp_path):
    for name, build in BUILDS.items():
        await start_service(build, settings)
    await start_service(auth, settings)  # a second auth replica
    monitor = f"http://127.0.0.1:{monitored_nats.http_port}"

    code, out, err = await portico_status("--json", nats_url=settings.nats_url, data_dir=tmp_path, monitor=monitor)
    assert code == 0, err
    status = json.loads(out)
    assert status["healthy"] is True
    services = {s["name"]: s for s in status["services"]}
    assert list(services) == list(SERVICES)
    assert {name: (s["up"], s["replicas"], s["replicas_source"], s["database"]) for name, s in services.items()} == {
        "auth": (True, 2, "monitor", "ok"), "conversations": (True, 1, "monitor", "ok"),
        "notifications": (True, 1, "monitor", "ok"), "kb": (True, 1, "monitor", "ok")}
    assert all(isinstance(s["outbox_pending"], int) for s in services.values())
    consumers = {c["consumer"]: c for c in status["consumers"]}
    assert set(consumers) == {"conversations-from-auth", "conversations-from-notifications",
                              "notifications-from-auth", "notifications-from-conversations"}
    assert all(c["pending"] >= 0 and c["unacked"] >= 0 for c in consumers.values())
    assert (status["dead_letters"], status["failed_notifications"]) == (0, 0)

    code, out, err = await portico_status(nats_url=settings.nats_url, data_dir=tmp_path, monitor=monitor)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Portico status at ")
    for name in SERVICES:
        assert any(line.split()[:2] == [name, "up"] for line in lines), out
    assert next(line for line in lines if line.startswith("auth ")).split()[2] == "2"
    assert any(line.startswith("conversations-from-auth") and line.split()[1:] == ["AUTH", "0", "0", "0"]
               for line in lines), out
    assert "Dead letters:          0" in out and "Failed notifications:  0" in out

    # Without the monitoring endpoint: the replicas seen answering, and the note that says so.
    code, out, err = await portico_status("--json", nats_url=settings.nats_url, data_dir=tmp_path)
    assert code == 0, err
    status = json.loads(out)
    assert all(s["replicas_source"] == "answers" and 1 <= s["replicas"] <= (2 if s["name"] == "auth" else 1)
               for s in status["services"])
    assert "PORTICO_NATS_MONITOR_URL" in status["notes"][0]


async def test_status_names_a_service_that_is_down_and_exits_1(settings, monitored_nats, start_service, tmp_path):
    for name in ("auth", "conversations", "kb"):
        await start_service(BUILDS[name], settings)
    monitor = f"http://127.0.0.1:{monitored_nats.http_port}"
    code, out, err = await portico_status(nats_url=settings.nats_url, data_dir=tmp_path, monitor=monitor)
    assert code == 1, err
    line = next(line for line in out.splitlines() if line.startswith("notifications "))
    assert line.split()[:3] == ["notifications", "DOWN", "0"] and "no replica is running" in line
    assert "Failed notifications:  unknown (the notifications service is down)" in out
    assert out.splitlines()[-1] == "NOT HEALTHY: notifications down"

    code, out, _ = await portico_status("--json", nats_url=settings.nats_url, data_dir=tmp_path)
    status = json.loads(out)
    assert code == 1 and status["healthy"] is False and status["failed_notifications"] is None
    assert [s["name"] for s in status["services"] if not s["up"]] == ["notifications"]


async def test_status_watch_refreshes_until_interrupted(settings, start_service, tmp_path):
    await start_service(auth, settings)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "status", "--watch", "--interval", "0.2", "--json", cwd=ROOT,
        env=environment(settings.nats_url, tmp_path, None), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    readings = [json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=30)) for _ in range(2)]
    assert [r["services"][0]["up"] for r in readings] == [True, True]
    process.send_signal(signal.SIGINT)  # Ctrl-C
    await asyncio.wait_for(process.wait(), timeout=30)
    assert process.returncode == 0
