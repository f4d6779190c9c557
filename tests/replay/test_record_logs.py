"""Recording the replay logs under `tests/replay/logs/` (see README.md there): skipped unless
PORTICO_RECORD_REPLAY_LOGS names the version to write, e.g. `v2`:

    PORTICO_RECORD_REPLAY_LOGS=v2 .venv/bin/python -m pytest -q tests/replay/test_record_logs.py -p no:randomly

It runs `tests/replay/scenario.py` on a live system (NATS, the four services, the gateway, an SMTP sink)
and writes each consumed stream with `portico events export --stream NAME` to `logs/<stream>-<version>.jsonl`.
"""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.kit.email import demo, settings, sink  # noqa: F401
from tests.replay.scenario import drive

LOGS = Path(__file__).parent / "logs"
VERSION = os.environ.get("PORTICO_RECORD_REPLAY_LOGS", "")
ROOT = Path(__file__).resolve().parents[2]
# The streams some service consumes (`Subscription(...)` in services/*/app.py).
CONSUMED = ("auth", "conversations", "notifications")


@pytest.mark.skipif(not VERSION, reason="set PORTICO_RECORD_REPLAY_LOGS=<version> to record the replay logs")
async def test_record_the_replay_logs(demo, sink, databases):  # noqa: F811
    if databases.backend != "sqlite":
        pytest.skip("recorded once, on SQLite")
    await drive(demo, sink)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")},
           "PORTICO_NATS_URL": demo.settings.nats_url, "PORTICO_DATA_DIR": str(demo.settings.data_dir)}
    LOGS.mkdir(exist_ok=True)
    for stream in CONSUMED:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "events", "export", "--stream", stream, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        (LOGS / f"{stream}-{VERSION}.jsonl").write_bytes(out)
