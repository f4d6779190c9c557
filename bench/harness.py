"""What the benchmarks in this folder share: the system started as `make run` starts it, the load generator,
the CPU and latency accounting, and the cleanup.

A benchmark keeps only what it measures; everything here is the same in each, so that two benchmarks' numbers
come from the same client, the same process setup and the same arithmetic.

Only the standard library is imported at the top. The rest (the project, httpx, uvicorn, ...) is imported in
the functions that use it: the benchmarks' child processes (`--bare-server`, `--serve-notifications`) import
this module too, before their start line, and should load only what they run.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
# The benchmarks run as scripts (`python bench/x.py`): `contracts`, `services` and `tests` come from this checkout.
sys.path.insert(0, str(ROOT))

from tests.kit.databases import create_database, drop_databases, plain_pg_url  # noqa: E402,F401

if TYPE_CHECKING:
    import httpx

    from services.runtime.nats import EmbeddedNats

LOG_LEVEL = "WARNING"  # services and benchmark alike: log lines would cost time inside the measurement
T = TypeVar("T")


# -- running a benchmark ---------------------------------------------------------------------------------

def quiet_logging() -> None:
    """This process and the services it starts log warnings only."""
    from services.runtime.logging import configure_logging

    os.environ["PORTICO_LOG_LEVEL"] = LOG_LEVEL
    configure_logging("bench", LOG_LEVEL)


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def run_in_temp_dir(main: Callable[[Path], Coroutine[Any, Any, T]], *, use_uvloop: bool = False) -> T:
    """`main(work)` on a new event loop (uvloop's when asked and installed), `work` a temp dir removed afterwards.

    SIGTERM becomes KeyboardInterrupt: a benchmark stopped from outside still stops its child processes, drops
    its databases and removes its files (the `with` blocks unwind as on Ctrl-C).
    """
    runner: Callable[[Coroutine[Any, Any, T]], T] = asyncio.run
    if use_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    signal.signal(signal.SIGTERM, _interrupted)
    with tempfile.TemporaryDirectory(prefix="portico-bench-") as tmp:
        return runner(main(Path(tmp)))


# -- processes -------------------------------------------------------------------------------------------

class Processes:
    """Child processes with their output in files; stopped (SIGTERM, then SIGKILL) in reverse order.

    As a `with` block: on an error the last lines of each one's log go to stderr (the error itself is often
    only there), and all are stopped however the block ends.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, Exception):
            self.print_tails()
        self.stop()

    def start(self, name: str, args: list[str], env: dict[str, str],
              stdin: int | None = None) -> subprocess.Popen[bytes]:
        """`python ARGS` from the checkout, output to NAME.log."""
        with open(self.logs / f"{name}.log", "ab") as out:
            process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=stdin)
        self.running.append((name, process))
        return process

    def start_service(self, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`python -m services.NAME`, as `make run` starts it."""
        return self.start(name, ["-m", f"services.{name}"], env)

    def pids(self, leave_out: str | None = None) -> dict[str, int]:
        return {name: process.pid for name, process in self.running if name != leave_out}

    def check(self) -> None:
        """Raise if a child has exited: waiting for it would only end in a timeout."""
        for name, process in self.running:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def print_tails(self) -> None:
        for name, _ in self.running:
            text = self.tail(name)
            if text:
                print(f"--- {name} (last lines) ---\n{text}", file=sys.stderr)

    def stop(self, name: str | None = None) -> None:
        """Stop one child by name, or all."""
        chosen = [(n, p) for n, p in reversed(self.running) if name is None or n == name]
        for _, process in chosen:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in chosen:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdin:
                process.stdin.close()
        self.running = [(n, p) for n, p in self.running if (n, p) not in chosen]


def service_env(work: Path, nats_url: str, settings: dict[str, str]) -> dict[str, str]:
    """The environment of the services' processes: `make run`'s (dev, unbuffered output, warnings only) on this
    run's nats-server and temp dir, plus `settings` (PORTICO_* names: databases, ports, ...)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PORTICO_ENV": "dev", "PORTICO_LOG_LEVEL": LOG_LEVEL,
            "PORTICO_NATS_URL": nats_url, "PORTICO_DATA_DIR": str(work / "var"), **settings}


@contextlib.contextmanager
def running_nats(work: Path, sync: str) -> Iterator["EmbeddedNats"]:
    """nats-server with JetStream, its store in the temp dir, `sync` its sync_interval; stopped on the way out."""
    from services.runtime.nats import EmbeddedNats

    server = EmbeddedNats(work / "nats", sync_interval=sync).start()
    try:
        yield server
    finally:
        server.stop()


def serve_like_gateway(app: Any, port: int) -> None:
    """Serve an ASGI app exactly as `services/gateway/__main__.py` serves the gateway (uvloop, httptools, no access
    log): a bare endpoint served so differs from the gateway only in what the app does."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False,
                log_config=None, timeout_graceful_shutdown=5)


BARE_POST = "/bare/conversations/{id}/messages"
BARE_LIST = "/bare/conversations"
BARE_HEALTH = "/bare/health"
BARE_SESSION = "/bare/session"


def bare_app() -> Any:
    """The bare FastAPI app the benchmarks compare Portico with: one trivial endpoint per measured kind of
    request (a health answer, a session, a list page, a JSON message post parsed by a pydantic model)."""
    from fastapi import FastAPI
    from pydantic import BaseModel, ConfigDict, Field

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid")

        body: str = Field(max_length=1_000_000)
        reopen: bool = False

    app = FastAPI()

    @app.get(BARE_HEALTH)
    async def health() -> dict:
        return {"status": "ok", "nats": "connected", "down": []}

    @app.get(BARE_SESSION)
    async def session() -> dict:
        return {"user_id": "u", "kind": "customer", "role": None, "email": "c@example.com", "portal": "demo"}

    @app.get(BARE_LIST)
    async def conversations(limit: int = 25) -> dict:
        return {"conversations": [], "next_cursor": None, "limit": limit}

    @app.post("/bare/conversations/{conversation_id}/messages", status_code=201)
    async def post(conversation_id: str, body: Body) -> dict:
        return {"conversation_id": conversation_id, "body": body.body, "reopened": body.reopen}

    return app


def bare_server_command(port: int) -> list[str]:
    """The command line of a child process serving `bare_app()` on `port` as the gateway is served."""
    return [str(Path(__file__).resolve()), "--bare-server", str(port)]


def cookie_header(token: str) -> dict[str, str]:
    """The request header that carries a session token."""
    from contracts.sessions import SESSION_COOKIE

    return {"Cookie": f"{SESSION_COOKIE}={token}"}


async def sso_customer(gateway: "httpx.AsyncClient", secret: str, email: str) -> str:
    """Sign a customer in by SSO on the demo portal through the gateway; the session token."""
    import jwt

    from contracts.sessions import SESSION_COOKIE

    token = jwt.encode({"email": email, "iat": int(time.time()), "displayName": "Dana Bench"}, secret,
                       algorithm="HS256")
    response = await gateway.post("/api/v1/portals/demo/session/sso", json={"token": token})
    assert response.status_code == 200, response.text
    return response.cookies[SESSION_COOKIE]


async def start_conversations(gateway: "httpx.AsyncClient", cookie: str, n: int) -> list[str]:
    """`n` conversations the signed-in customer starts on the demo portal through the API; their ids."""
    ids = []
    for i in range(n):
        response = await gateway.post("/api/v1/portals/demo/conversations", headers=cookie_header(cookie),
                                      json={"subject": f"Invoice question {i}", "body": "Hello, invoice 42 ..."})
        assert response.status_code == 201, response.text
        ids.append(response.json()["conversation"]["id"])
    return ids


def answers_200(response: "httpx.Response") -> bool:
    return response.status_code == 200


async def wait_http(port: int, path: str, processes: Processes,
                    ready: Callable[["httpx.Response"], bool] = answers_200, timeout: float = 60) -> None:
    """Poll GET `path` until `ready(response)`; raise at once if one of `processes` has exited."""
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while True:
            processes.check()
            try:
                if ready(await client.get(path)):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"127.0.0.1:{port}{path} not ready after {timeout:.0f}s")
            await asyncio.sleep(0.1)


async def wait_gateway_ready(port: int, processes: Processes, services: tuple[str, ...]) -> None:
    """The gateway's /readyz probes every service; a benchmark runs only the ones its routes use, so only those
    must be "ok"."""
    def ready(response: "httpx.Response") -> bool:
        try:
            statuses = response.json()["services"]
        except (ValueError, KeyError):
            return False
        return all(statuses[name]["status"] == "ok" for name in services)

    await wait_http(port, "/readyz", processes, ready)


async def start_portico(processes: Processes, work: Path, nats_url: str,
                        databases: dict[str, str]) -> tuple[int, dict[str, str]]:
    """auth and the other services of `databases` ({service: database URL}) as processes, and the gateway on a
    free port, as `make run` starts them; returns once the gateway's /readyz says they are up, with the gateway's
    port and the environment they were started with."""
    from services.runtime.nats import free_port

    port = free_port()
    env = service_env(work, nats_url, {
        **{f"PORTICO_{service.upper()}_DATABASE_URL": url for service, url in databases.items()},
        "PORTICO_HTTP_HOST": "127.0.0.1", "PORTICO_HTTP_PORT": str(port)})
    for service in databases:
        processes.start_service(service, env)
    processes.start_service("gateway", env)
    await wait_gateway_ready(port, processes, tuple(databases))
    return port, env


async def wait_outbox_drained(database_url: str, service: str, processes: Processes, timeout: float) -> float:
    """Wait until the service's relay has published what was seeded into its database, so that it does not
    run during the measurement; seconds waited."""
    from tests.helpers import rows

    started = time.monotonic()
    while rows(database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0]:
        processes.check()
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"the outbox of {service} not drained after {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


# -- databases -------------------------------------------------------------------------------------------

class Databases:
    """A SQLite file per service in the temp dir, or fresh PostgreSQL databases, dropped at the end (as a `with`
    block) so that a run never reads what an earlier one left."""

    def __init__(self, work: Path, server_url: str | None) -> None:
        self.work, self.server_url = work, server_url
        self.created: list[str] = []

    def __enter__(self) -> "Databases":
        return self

    def __exit__(self, *_: object) -> None:
        self.drop()

    def url(self, service: str) -> str:
        if not self.server_url:
            return f"sqlite:///{self.work / f'{service}.sqlite3'}"
        name, url = create_database(self.server_url, "portico_bench", service)
        self.created.append(name)
        return url

    def drop(self) -> None:
        drop_databases(self.server_url or "", self.created)
        self.created.clear()


@dataclass(frozen=True)
class DemoPortal:
    org_id: str
    kb_id: str
    sso_secret: str  # signs the SSO tokens customers sign in with


def seed_auth(auth_db: str) -> DemoPortal:
    """auth's schema and demo data as `make run` seeds them: org and portal `demo`, its SSO secret, an admin."""
    from services.auth.seed import seed_demo
    from services.runtime.db import make_engine, session_scope
    from services.runtime.migrations import upgrade
    from tests.helpers import rows

    upgrade("auth", auth_db)
    engine = make_engine(auth_db)
    try:
        with session_scope(engine) as session:
            portal = seed_demo(session, api_key="bench-api-key-0123456789", admin_password="bench-admin-password")
            org_id, kb_id = portal.org_id, portal.kb_id
    finally:
        engine.dispose()
    secret = rows(auth_db, "SELECT s.secret FROM portal_secrets s JOIN portals p ON p.id = s.portal_id "
                           "WHERE p.slug = 'demo' AND s.revoked_at IS NULL ORDER BY s.created_at DESC")[0][0]
    return DemoPortal(org_id=org_id, kb_id=kb_id, sso_secret=secret)


def seed_kb(kb_db: str, org_id: str, kb_id: str) -> None:
    """kb's schema, portal row and sample articles for the demo portal, as `portico seed` writes them."""
    from services.kb.seed import seed_demo
    from services.runtime.db import make_engine, session_scope
    from services.runtime.migrations import upgrade

    upgrade("kb", kb_db)
    engine = make_engine(kb_db)
    try:
        with session_scope(engine) as session:
            seed_demo(session, portal="demo", org_id=org_id, kb_id=kb_id)
    finally:
        engine.dispose()


# -- load ------------------------------------------------------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection sending pre-built requests; no parsing beyond status and length.

    The load generator must not be the limit of what it measures: httpx costs more per request than a bare
    FastAPI endpoint does, this does not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body)
            body += chunk[:-2]

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def request_bytes(method: str, port: int, path: str, *, headers: dict[str, str] | None = None,
                  body: bytes | None = None, accept: str = "application/json") -> bytes:
    """A request as `Connection.send` sends it, built once before the load (a JSON body, if any)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "User-Agent: portico-bench",
             f"Accept: {accept}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def keep_alive_load(port: int, requests: list[bytes], concurrency: int, *, seconds: float | None = None,
                          count: int | None = None, expect: int = 200,
                          check: Callable[[int, bytes], None] | None = None) -> tuple[float, list[tuple[int, float]]]:
    """`concurrency` connections, each sending the next request (in rotation) as soon as its answer is in.

    Runs for `seconds`, or until `count` requests are answered. Every answer must have the status `expect`;
    `check(index, body)` may look further. Returns requests/s and (request index, latency ms) of every answer.
    """
    connections = [await Connection.open(port) for _ in range(concurrency)]
    latencies: list[tuple[int, float]] = []
    sent = 0
    deadline = time.perf_counter() + seconds if seconds is not None else float("inf")

    async def worker(conn: Connection) -> None:
        nonlocal sent
        while time.perf_counter() < deadline and (count is None or sent < count):
            index = sent % len(requests)
            sent += 1
            started = time.perf_counter()
            status, body = await conn.send(requests[index])
            latencies.append((index, (time.perf_counter() - started) * 1000))
            if status != expect:
                raise AssertionError(f"answered {status}: {body[:300]!r}")
            if check is not None:
                check(index, body)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
        elapsed = time.perf_counter() - started
    finally:
        for conn in connections:
            await conn.close()
    return len(latencies) / elapsed, latencies


def refuse_cookies() -> CookieJar:
    """A cookie jar for httpx that keeps none: each request names its own session, and a kept session cookie
    would make each sign-in also end the previous session."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


async def fetch_and_ack(nc: Any, sub: Any, n: int) -> int:
    """The raw nats-py consumer Portico's consumers are compared with: pull `fetch(500)` + `ack` until `n`
    messages are in, then a flush so that the last acks have left; messages received."""
    got = 0
    while got < n:
        msgs = await sub.fetch(500, timeout=5)
        for msg in msgs:
            await msg.ack()
        got += len(msgs)
    await nc.flush()
    return got


# -- accounting ------------------------------------------------------------------------------------------

def stat_cpu_seconds(stat_file: Path) -> float:
    """User + system CPU seconds from a Linux /proc stat file (a process's or a thread's). Raises OSError if
    it cannot be read (the process or thread is gone, or not Linux)."""
    fields = stat_file.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
    except OSError:
        return 0.0


def rss_kib(pid: int) -> tuple[int, int]:
    """A process's resident memory now and its peak since start (or since `reset_rss_peak`): (VmRSS, VmHWM) in
    KiB, from Linux /proc/PID/status. Raises OSError if it cannot be read (the process is gone, or not Linux)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def reset_rss_peak(pid: int) -> bool:
    """Set a process's VmHWM back to its VmRSS (Linux: `5` into /proc/PID/clear_refs), so that the next peak read
    is the peak of what follows; False where that is refused (another user's process, an old kernel)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class CpuClock:
    """CPU seconds each named process spends from now to `spent()`: where the work behind a measurement runs
    (the services, nats-server, the load generator itself)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def spent(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}


def percentile(values: list[float], q: float) -> float:
    """The value below which a fraction `q` of `values` lie (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * q) - 1, 0)]


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--bare-server":
    serve_like_gateway(bare_app(), int(sys.argv[2]))
