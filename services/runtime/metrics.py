"""Prometheus metrics of a Portico process, and the per-replica metrics port (`/metrics`, `/healthz`).

Every metric is named `portico_*` and lives in prometheus-client's default registry, so a process that
runs several services (the test suite, an embedded setup) exposes them all, told apart by the
`service` or `consumer` label. Counters and histograms are observed where things happen (a few µs
each); the gauges that need a query (consumer lag, outbox backlog) are refreshed by a background task
every `REFRESH_EVERY` seconds, never by a scrape.

The metrics port is `PORTICO_METRICS_PORT` (0, the default: none) on `PORTICO_METRICS_HOST`. One
server per process: a second service in the same process joins the first one's server. Its
`/healthz` is this replica's own liveness and readiness (200 `{"status": "ok"}` when every service of
the process is connected to NATS and its database answers within `DATABASE_CHECK_TIMEOUT`; else 503
with `down` naming what is not), unlike the gateway's `/readyz`, which any replica may answer.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from services.runtime.logging import get_logger

log = get_logger("portico.metrics")

REFRESH_EVERY = 10.0  # seconds between refreshes of consumer lag and outbox backlog
HEALTH_TIMEOUT = 0.9  # seconds /healthz waits for a database; a probe's default timeout is 1 s

# Latency buckets in seconds: from sub-millisecond RPCs to the 5 s RPC timeout and beyond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("portico_http_requests_total", "HTTP requests answered by the gateway, by route "
                        "template (`/api/v1/conversations/{conversation_id}`; `unmatched` for no route), "
                        "method and status.", ["route", "method", "status"])
HTTP_LATENCY = Histogram("portico_http_request_duration_seconds", "Time from a request's arrival to the end "
                         "of its response (streamed responses included), by route template and method.",
                         ["route", "method"], buckets=LATENCY_BUCKETS)
RPC_LATENCY = Histogram("portico_rpc_duration_seconds", "Time a service took to answer a request, by "
                        "service, operation and outcome (`ok`, an error code such as `not_found`, or "
                        "`failed` for an unexpected exception).", ["service", "operation", "outcome"],
                        buckets=LATENCY_BUCKETS)
EVENTS_HANDLED = Counter("portico_events_handled_total", "Events a consumer took, by outcome: `applied`, "
                         "`duplicate` (already in its inbox), `retried` (failed, will come back), "
                         "`dead_lettered`.", ["consumer", "outcome"])
REDELIVERIES = Counter("portico_event_redeliveries_total", "Events delivered to a consumer again (after a "
                       "failure, a crash or an ack timeout).", ["consumer"])
DEAD_LETTERS = Counter("portico_dead_letters_total", "Events a consumer sent to the dead-letter stream.",
                       ["consumer"])
CONSUMER_LAG = Gauge("portico_consumer_lag", "Events in the stream not yet delivered to a consumer "
                     "(JetStream num_pending), refreshed every 10 s.", ["consumer"])
CONSUMER_UNACKED = Gauge("portico_consumer_ack_pending", "Events delivered to a consumer and not yet "
                         "acknowledged (JetStream num_ack_pending), refreshed every 10 s.", ["consumer"])
OUTBOX_BACKLOG = Gauge("portico_outbox_backlog", "Outbox rows committed and not yet published, by "
                       "service, refreshed every 10 s.", ["service"])
EMAILS = Counter("portico_emails_total", "E-mails of the notifications service by outcome: `sent` (handed "
                 "to the SMTP server), `failed` (given up after the last try), `bounced`.", ["outcome"])
SIGN_INS = Counter("portico_sign_ins_total", "Sign-ins answered by the auth service, by method "
                   "(`email_code`, `sso`, `anonymous`, `custom_sign_on`, `password`) and outcome (`ok` "
                   "or the error code).", ["method", "outcome"])

# The auth operations that open a session, and the sign-in method each is.
SIGN_IN_METHODS = {
    "verify_email_code": "email_code",
    "sso_login": "sso",
    "anonymous_login": "anonymous",
    "complete_custom_sign_on": "custom_sign_on",
    "staff_login": "password",
}

for _outcome in ("sent", "failed", "bounced"):
    EMAILS.labels(_outcome)  # present at 0 from the start, so a rate() has a first sample


def email_outcome(outcome: str, count: int = 1) -> None:
    """Count `count` e-mails `sent`, `failed` (gave up) or `bounced`."""
    EMAILS.labels(outcome).inc(count)


class RpcTimer:
    """Per-operation observers of `portico_rpc_duration_seconds` (and `portico_sign_ins_total` for the
    auth operations that open a session), resolved once when the endpoint is registered."""

    __slots__ = ("_service", "_operation", "_ok", "_method")

    def __init__(self, service: str, operation: str) -> None:
        self._service, self._operation = service, operation
        self._ok = RPC_LATENCY.labels(service, operation, "ok")
        self._method = SIGN_IN_METHODS.get(operation) if service == "auth" else None

    def observe(self, seconds: float, outcome: str = "ok") -> None:
        """Record one answer that took `seconds`, with `outcome` `ok`, an error code or `failed`."""
        if outcome == "ok":
            self._ok.observe(seconds)
        else:
            RPC_LATENCY.labels(self._service, self._operation, outcome).observe(seconds)
        if self._method is not None:
            SIGN_INS.labels(self._method, outcome).inc()


def consumer_batch(consumer: str, msgs: list[Any]) -> None:
    """Count the redeliveries among a fetched batch (`num_delivered` > 1 in the JetStream metadata)."""
    again = 0
    for msg in msgs:
        try:
            if msg.metadata.num_delivered > 1:
                again += 1
        except Exception:  # not a JetStream message: nothing to count
            continue
    if again:
        REDELIVERIES.labels(consumer).inc(again)


def events_handled(consumer: str, outcome: str, count: int = 1) -> None:
    """Count `count` events of `consumer` with `outcome` (`applied`, `duplicate`, `retried`, `dead_lettered`)."""
    if count:
        EVENTS_HANDLED.labels(consumer, outcome).inc(count)
        if outcome == "dead_lettered":
            DEAD_LETTERS.labels(consumer).inc(count)


def render() -> tuple[bytes, str]:
    """The text exposition of every metric of this process, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


# -- the metrics port --------------------------------------------------------------------------------

HealthCheck = Callable[[], Awaitable[list[str]]]  # what is down ([] when healthy)


class MetricsServer:
    """The per-process HTTP server of the metrics port: `GET /metrics` and `GET /healthz`.

    A minimal HTTP/1.1 server on asyncio (one request per connection, then closed): scrapes and probes
    are a few per minute, and the process needs no second web framework for them.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.checks: dict[str, HealthCheck] = {}
        self._server: asyncio.Server | None = None
        self._users = 0

    async def start(self) -> None:
        """Open the port (the first service of the process) or join it. Raises RuntimeError when the
        port cannot be opened (taken by another process)."""
        self._users += 1
        if self._server is None:
            try:
                self._server = await asyncio.start_server(self._handle, self.host, self.port)
            except OSError as exc:
                self._users -= 1
                raise RuntimeError(f"PORTICO_METRICS_PORT {self.port} on {self.host} cannot be opened ({exc}); "
                                   "each process needs a port of its own, or 0 for none") from exc
            self.port = self._server.sockets[0].getsockname()[1]
            log.info("metrics port open", host=self.host, port=self.port)

    async def stop(self) -> None:
        self._users -= 1
        if self._users <= 0 and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body): every registered check at once, each bounded by `HEALTH_TIMEOUT`."""
        names = list(self.checks)

        async def run(name: str) -> list[str]:
            try:
                return await asyncio.wait_for(self.checks[name](), timeout=HEALTH_TIMEOUT)
            except Exception:
                return ["database"]

        results = await asyncio.gather(*(run(name) for name in names))
        down = [f"{name}:{what}" for name, result in zip(names, results, strict=True) for what in result]
        return not down, {"status": "degraded" if down else "ok", "services": names, "down": down}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, target = request.split(b" ", 2)[:2]
            path = target.split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                status, body, ctype = 405, b'{"error": "method_not_allowed", "message": "Use GET."}', "application/json"
            elif path == b"/metrics":
                body, ctype = render()
                status = 200
            elif path == b"/healthz":
                ok, answer = await self.health()
                status, body, ctype = (200 if ok else 503), json.dumps(answer).encode(), "application/json"
            else:
                status, body, ctype = 404, b'{"error": "not_found", "message": "Try /metrics or /healthz."}', \
                    "application/json"
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
            head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
                    f"connection: close\r\n\r\n").encode()
            writer.write(head if method == b"HEAD" else head + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError,
                ConnectionError):
            pass
        finally:
            writer.close()


_servers: dict[tuple[str, int], MetricsServer] = {}


def metrics_server(host: str, port: int) -> MetricsServer:
    """The process's server for `host:port` (shared by the services of one process)."""
    key = (host, port)
    if key not in _servers:
        _servers[key] = MetricsServer(host, port)
    return _servers[key]


async def refresh_forever(refresh: Callable[[], Awaitable[None]], every: float = REFRESH_EVERY) -> None:
    """`await refresh()` now and every `every` seconds until cancelled; failures are logged, never fatal."""
    while True:
        started = time.monotonic()
        try:
            await refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("metrics refresh failed", error=repr(exc))
        await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))


def outcome_of(exc: BaseException) -> str:
    """The `outcome` label of an RPC that raised `exc`: a `ServiceError`'s code, `invalid_request` for a
    request that does not validate, `failed` for anything else."""
    from pydantic import ValidationError

    from contracts.errors import ServiceError

    if isinstance(exc, ServiceError):
        return exc.code.value
    if isinstance(exc, ValidationError):
        return "invalid_request"
    return "failed"


class ServiceObserver:
    """A service's part of the metrics port: its `/healthz` check and the refresh of its gauges
    (consumer lag of each of its consumers, its outbox backlog). Nothing runs when `port` is 0."""

    def __init__(self, service: Any, host: str, port: int, every: float = REFRESH_EVERY) -> None:
        self.service = service
        self.server = metrics_server(host, port) if port else None
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.server is None:
            return
        self.server.checks[self.service.name] = self.check
        await self.server.start()
        self._task = asyncio.create_task(refresh_forever(self.refresh, self.every),
                                         name=f"{self.service.name}-metrics")

    async def stop(self) -> None:
        if self.server is None:
            return
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.server.checks.pop(self.service.name, None)
        await self.server.stop()

    async def check(self) -> list[str]:
        """What of this replica is down: `nats` (not connected), `database` (no answer to `SELECT 1`)."""
        from sqlmodel import Session, text

        from services.runtime.db import READ_ONLY
        from services.runtime.rpc import bus_connected

        down = [] if bus_connected(self.service.broker) else ["nats"]

        def select_one() -> None:
            with Session(self.service.engine.execution_options(**READ_ONLY)) as session:
                session.exec(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(select_one), timeout=HEALTH_TIMEOUT)
        except Exception:
            down.append("database")
        return down

    async def refresh(self) -> None:
        """Read each consumer's JetStream info (lag, unacknowledged) and the outbox backlog once."""
        from sqlmodel import Session

        from services.runtime.db import READ_ONLY
        from services.runtime.outbox import pending_count

        service = self.service
        js = service.broker.config.connection_state.stream
        for consumer in service.consumers:
            try:
                info = await js.consumer_info(consumer.subscription.stream, consumer.name, timeout=2)
            except Exception as exc:
                log.debug("consumer info unavailable", consumer=consumer.name, error=repr(exc))
                continue
            CONSUMER_LAG.labels(consumer.name).set(info.num_pending or 0)
            CONSUMER_UNACKED.labels(consumer.name).set(info.num_ack_pending or 0)

        def backlog() -> int:
            with Session(service.engine.execution_options(**READ_ONLY)) as session:
                return pending_count(session)

        OUTBOX_BACKLOG.labels(service.name).set(await asyncio.to_thread(backlog))
