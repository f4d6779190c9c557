"""`make run`'s command (`portico dev`) as a person runs it: everything starts, even with port 4222
taken, the demo org is seeded, the banner tells how to sign in, Ctrl-C stops every process."""

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from services.runtime.nats import free_port
from tests.helpers import rows

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@contextmanager
def port_4222_taken() -> Iterator[None]:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 4222))
        sock.listen()
    except OSError:
        pass  # something already listens there, which is the point
    try:
        yield
    finally:
        sock.close()


def wait_for_output(log: Path, pattern: str, process: subprocess.Popen, timeout: float = 120) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        if process.poll() is not None:
            raise AssertionError(f"portico dev exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not printed within {timeout}s:\n{log.read_text()[-3000:]}")


def start_dev(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path, int]:
    port = free_port()
    log = tmp_path / f"dev-{port}.log"
    environment = {**os.environ, "PORTICO_DATA_DIR": str(tmp_path / "var"), "PORTICO_HTTP_PORT": str(port), **env}
    environment.pop("PORTICO_NATS_URL", None) if "PORTICO_NATS_URL" not in env else None
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "dev"], cwd=ROOT, env=environment,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, log, port


def ctrl_c(process: subprocess.Popen) -> int:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=30)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_portico_dev_runs_everything_seeds_the_demo_and_stops_on_ctrl_c(tmp_path):
    password, api_key = "a-demo-password-from-env", "pk_demo_key_from_the_environment_0123456789"
    with port_4222_taken():
        process, log, port = start_dev(tmp_path, PORTICO_BOOTSTRAP_ADMIN_PASSWORD=password,
                                       PORTICO_BOOTSTRAP_API_KEY=api_key)
        try:
            wait_for_output(log, r"Portico is running at http://127\.0\.0\.1:%d" % port, process)
            text = log.read_text()
            assert f"Password:      {password}" in text and f"org.admin key: {api_key}" in text
            assert "admin@example.com" in text
            nats_port = int(re.search(r"NATS:\s+nats://127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
            assert nats_port != 4222

            base = f"http://127.0.0.1:{port}"
            ready = httpx.get(f"{base}/readyz", timeout=5)
            assert ready.status_code == 200, ready.text
            browser = httpx.Client(base_url=base, timeout=10)
            response = browser.post("/api/v1/portals/demo/session/email", json={"email": "try@example.com"})
            assert response.status_code == 202, response.text
            # The unverified browser may open a conversation, with a file; the admin answers through the API.
            started = browser.post("/api/v1/portals/demo/conversations",
                                   json={"subject": "Trying Portico", "body": "Hello from make run"})
            assert started.status_code == 201, started.text
            cid = started.json()["conversation"]["id"]
            posted = browser.post(f"/api/v1/portals/demo/conversations/{cid}/messages", data={"body": "A file"},
                                  files=[("files", ("notes.csv", b"a,b\n1,2\n", "text/csv"))])
            assert posted.status_code == 201, posted.text
            agent = {"Authorization": f"Bearer {api_key}"}
            assert [c["id"] for c in httpx.get(f"{base}/api/v1/agent/conversations", headers=agent).json()[
                "conversations"]] == [cid]
            answer = httpx.post(f"{base}/api/v1/agent/conversations/{cid}/messages", headers=agent,
                                json={"body": "Welcome!"})
            assert answer.status_code == 201, answer.text
            listed = browser.get("/api/v1/portals/demo/conversations").json()["conversations"]
            assert listed[0]["preview"] == "Welcome!" and listed[0]["unread"] is True
            # The seeded knowledge base: public sample articles, found with a typo, and the portal's config.
            articles = httpx.get(f"{base}/api/v1/portals/demo/kb/articles").json()["articles"]
            assert len(articles) >= 4 and {a["visibility"] for a in articles} == {"public"}
            found = httpx.get(f"{base}/api/v1/portals/demo/kb/articles", params={"q": "pasword"}).json()
            assert found["articles"][0]["slug"] == "reset-your-password"
            config = httpx.get(f"{base}/api/v1/portals/demo/config").json()
            assert config["switches"]["internal_kb"] is True and config["switches"]["my_conversations"] is True

            auth_db = f"sqlite:///{tmp_path / 'var' / 'db' / 'auth.sqlite3'}"
            conv_db = f"sqlite:///{tmp_path / 'var' / 'db' / 'conversations.sqlite3'}"
            [(password_hash,)] = rows(auth_db, "SELECT password_hash FROM users WHERE email = 'admin@example.com'")
            assert PasswordHasher().verify(password_hash, password)
            [(key_hash, role)] = rows(auth_db, "SELECT key_hash, role FROM api_keys")
            assert key_hash == hashlib.sha256(api_key.encode()).hexdigest() and role == "org.admin"
            deadline = time.monotonic() + 15
            while not rows(conv_db, "SELECT 1 FROM customers WHERE email = 'try@example.com'"):
                assert time.monotonic() < deadline, "customer never reached conversations"
                time.sleep(0.2)
            assert (tmp_path / "var" / "nats" / "jetstream").is_dir()
        finally:
            if process.poll() is None:
                ctrl_c(process)
    text = log.read_text()
    pids = [int(p) for p in re.findall(r"started \(pid=(\d+)\)", text)]
    assert len(pids) == 6  # nats, four services, gateway
    time.sleep(0.5)
    assert not [pid for pid in pids if alive(pid)], "a process outlived Ctrl-C"
    for name in ("auth", "conversations", "notifications", "kb"):
        assert re.search(rf"{name}\s+\|.*service stopped", text), f"{name} did not stop cleanly"
    assert "SIGKILL" not in text, "a process had to be killed: it did not stop within honcho's grace period"


def test_portico_dev_uses_the_given_nats_server(tmp_path, nats_server):
    process, log, port = start_dev(tmp_path, PORTICO_NATS_URL=nats_server.url)
    try:
        wait_for_output(log, r"Portico is running at", process)
        text = log.read_text()
        assert f"NATS:          {nats_server.url}" in text
        assert "nats started" not in text
        # Credentials chosen at random are printed, kept under the data dir, and the same on the next run.
        first_password = re.search(r"Password:\s+(\S+)", text).group(1)  # type: ignore[union-attr]
    finally:
        ctrl_c(process)
    process, log, port = start_dev(tmp_path, PORTICO_NATS_URL=nats_server.url)
    try:
        wait_for_output(log, r"Portico is running at", process)
        assert f"Password:      {first_password}" in log.read_text()
    finally:
        ctrl_c(process)


def test_portico_dev_refuses_a_taken_http_port(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "services.cli", "dev"], cwd=ROOT, capture_output=True,
                                text=True, timeout=60,
                                env={**os.environ, "PORTICO_DATA_DIR": str(tmp_path), "PORTICO_HTTP_PORT": str(taken)})
    assert result.returncode == 2
    assert f"Port {taken} is taken" in result.stderr
