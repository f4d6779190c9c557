"""`portico health <target>`, the check every container and probe of the deploy files runs: exit 0 when
the target answers, 1 with the reason when it does not (a missing service, a failing database, a gateway
that is down or not ready), `--live` asking only for an answer."""

import asyncio
import json
import os
import sys
from pathlib import Path

from services.auth.app import build as auth
from services.runtime.db import make_engine
from services.runtime.nats import free_port

ROOT = Path(__file__).resolve().parents[2]


async def portico_health(*args: str, nats_url: str | None = None, http_port: int | None = None,
                         data_dir: Path) -> tuple[int, str, str]:
    """Run `portico health ...` in a subprocess without blocking the loop the in-process services answer on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env["PORTICO_DATA_DIR"] = str(data_dir)
    if nats_url:
        env["PORTICO_NATS_URL"] = nats_url
    if http_port:
        env["PORTICO_HTTP_PORT"] = str(http_port)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "health", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_running_service_is_healthy_and_a_missing_one_is_not(settings, start_service, tmp_path):
    service = await start_service(auth, settings)
    code, out, err = await portico_health("auth", nats_url=settings.nats_url, data_dir=tmp_path)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["target"] == "auth" and answer["database"] == "ok" and answer["instance"] == service.instance

    code, out, err = await portico_health("kb", nats_url=settings.nats_url, data_dir=tmp_path)
    assert (code, out) == (1, "") and "kb: no replica is running" in err


async def test_a_service_whose_database_fails_is_unhealthy_but_alive(settings, start_service, tmp_path):
    service = await start_service(auth, settings)
    working = service.engine
    service.engine = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'auth.sqlite3'}")
    try:
        code, _, err = await portico_health("auth", nats_url=settings.nats_url, data_dir=tmp_path)
        assert code == 1 and "cannot reach its database" in err
        code, out, err = await portico_health("auth", "--live", nats_url=settings.nats_url, data_dir=tmp_path)
        assert code == 0, err
        assert json.loads(out)["database"] == "error"
    finally:
        service.engine.dispose()
        service.engine = working


async def test_unreachable_nats_and_unknown_targets_fail_with_a_message(tmp_path):
    code, _, err = await portico_health("auth", nats_url=f"nats://127.0.0.1:{free_port()}", data_dir=tmp_path)
    assert code == 1 and "cannot reach NATS" in err and "Traceback" not in err
    code, _, err = await portico_health("billing", data_dir=tmp_path)
    assert code == 1 and "unknown target 'billing'" in err


async def test_the_gateway_is_healthy_ready_only_with_every_service_and_alive_either_way(settings, gateway,
                                                                                       tmp_path):
    port = int(gateway.base_url.rsplit(":", 1)[1])
    code, out, err = await portico_health("gateway", http_port=port, data_dir=tmp_path)
    assert code == 0, err
    assert json.loads(out) == {"target": "gateway", "url": f"http://127.0.0.1:{port}/healthz", "status": 200}

    code, _, err = await portico_health("gateway", "--ready", http_port=port, data_dir=tmp_path)
    assert code == 1 and "answered 503" in err  # no service runs in this test
    code, _, err = await portico_health("gateway", "--ready", "--live", http_port=port, data_dir=tmp_path)
    assert code == 0, err

    code, _, err = await portico_health("gateway", http_port=free_port(), data_dir=tmp_path)
    assert code == 1 and "no answer from" in err
