"""`portico` commands that talk to NATS: they use the server `portico dev` runs (never a stranger on
4222 by surprise), say which one, fail fast and clearly when it is down, and an empty dead-letter
stream is the healthy state, not a crash."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from contracts.subjects import DLQ_STREAM
from services.cli import DEFAULT_NATS_URL, DEV_NATS_RECORD, resolve_nats_url
from services.runtime.nats import ensure_streams, free_port
from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NATS_COMMANDS = [["dlq", "list"], ["dlq", "list", "--json"], ["replay", "conversations"],
                 ["notifications", "failed"], ["notifications", "retry", "01JNOTIFICATION0000000000"]]


def portico(*args: str, data_dir: Path, nats_url: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env["PORTICO_DATA_DIR"] = str(data_dir)
    if nats_url:
        env["PORTICO_NATS_URL"] = nats_url
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def record_dev(data_dir: Path, url: str, pid: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEV_NATS_RECORD).write_text(json.dumps({"url": url, "pid": pid}))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def test_dlq_list_on_an_empty_dead_letter_stream_says_so(nats_server, tmp_path):
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc.jetstream())  # as the services create them: the DLQ exists and is empty
    finally:
        await nc.close()
    result = portico("dlq", "list", data_dir=tmp_path, nats_url=nats_server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no dead-lettered events\n"
    assert "Traceback" not in result.stderr and "BadRequestError" not in result.stderr
    as_json = portico("dlq", "list", "--json", data_dir=tmp_path, nats_url=nats_server.url)
    assert as_json.returncode == 0 and as_json.stdout == ""


async def test_dlq_list_reads_a_server_without_streams_and_creates_nothing(nats_server, tmp_path):
    result = portico("dlq", "list", data_dir=tmp_path, nats_url=nats_server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no dead-lettered events\n"
    nc = await nats.connect(nats_server.url)
    try:
        with pytest.raises(nats.js.errors.NotFoundError):
            await nc.jetstream().stream_info(DLQ_STREAM)
    finally:
        await nc.close()


@pytest.mark.parametrize("command", NATS_COMMANDS, ids=" ".join)
def test_commands_say_they_cannot_reach_nats_and_exit(command, tmp_path):
    down = f"nats://127.0.0.1:{free_port()}"
    result = portico(*command, data_dir=tmp_path, nats_url=down, timeout=30)  # the old commands never ended
    assert result.returncode == 1
    assert f"cannot reach NATS at {down}" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == f"NATS: {down} (PORTICO_NATS_URL)"


@pytest.mark.parametrize("command", NATS_COMMANDS, ids=" ".join)
def test_commands_use_the_server_of_the_running_portico_dev(command, nats_server, tmp_path):
    data_dir = tmp_path / "var"
    record_dev(data_dir, nats_server.url, os.getpid())  # this test stands in for the running `portico dev`
    result = portico(*command, data_dir=data_dir)
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"NATS: {nats_server.url} (the running `portico dev`"), result.stderr
    assert "cannot reach NATS" not in result.stderr and "Traceback" not in result.stderr
    if command[0] == "notifications":  # nothing serves it on this bare server: said, not hung
        assert result.returncode == 1 and "the notifications service is not running" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_the_nats_url_is_chosen_explicit_then_running_dev_then_default(nats_server, tmp_path):
    data_dir = tmp_path / "var"
    assert resolve_nats_url(Settings(data_dir=data_dir))[0] == DEFAULT_NATS_URL
    assert "no running `portico dev` found" in resolve_nats_url(Settings(data_dir=data_dir))[1]

    record_dev(data_dir, nats_server.url, os.getpid())
    assert resolve_nats_url(Settings(data_dir=data_dir))[0] == nats_server.url
    explicit = "nats://10.1.2.3:4222"
    assert resolve_nats_url(Settings(data_dir=data_dir, nats_url=explicit)) == (explicit, "PORTICO_NATS_URL")

    record_dev(data_dir, nats_server.url, dead_pid())  # `portico dev` killed without cleaning up
    url, reason = resolve_nats_url(Settings(data_dir=data_dir))
    assert url == DEFAULT_NATS_URL and "is not running" in reason

    record_dev(data_dir, f"nats://127.0.0.1:{free_port()}", os.getpid())  # alive, but its server is gone
    assert resolve_nats_url(Settings(data_dir=data_dir))[0] == DEFAULT_NATS_URL
