"""What `portico status` shows on one screen, read over NATS (nothing is created or changed on the server):
each service's replicas, database and outbox backlog, each durable consumer's lag, the dead letters and
the failed notifications.

Replicas: a service's ping goes to its queue group, so one replica answers each ping. With the NATS
server's monitoring endpoint (PORTICO_NATS_MONITOR_URL, e.g. `http://127.0.0.1:8222`) the count is the
number of client connections subscribed to the service's ping subject in its queue group (`/connz`;
for a cluster list every server's endpoint). Without it the count is the number of different replicas
that answered `PINGS` pings: at least 1 when the service is up, possibly fewer than are running.
"""

import asyncio
import json
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import nats.errors
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from contracts import operations
from contracts.notifications import ListNotifications
from contracts.rpc import Ping, Pong
from contracts.subjects import DLQ_STREAM, SERVICES
from services.runtime.backlog import consumer_lags

# Pings sent to each service (at once) to see its replicas answer, and seconds to wait for each.
PINGS = 6
PING_TIMEOUT = 2.0
# Seconds the monitoring endpoint has to answer.
MONITOR_TIMEOUT = 2.0
# Failed notifications are counted up to this many (the list operation's limit).
FAILED_LIMIT = 1000


@dataclass
class ServiceStatus:
    """One service: `up` when a replica answered; `replicas` counted as `replicas_source` says
    (`"monitor"`: connections subscribed to its ping; `"answers"`: distinct replicas seen answering);
    `database` `"ok"`/`"error"` (None when down); `outbox_pending` events committed, not yet published,
    as the largest backlog a replica reported (None when down)."""

    name: str
    up: bool
    replicas: int
    replicas_source: str
    database: str | None = None
    outbox_pending: int | None = None
    error: str | None = None


@dataclass
class Status:
    """Everything `portico status` shows; `healthy` when every service answered with its database ok.
    `failed_notifications` is None when the notifications service did not answer."""

    at: str
    nats_url: str
    services: list[ServiceStatus]
    consumers: list[dict[str, object]]
    dead_letters: int
    failed_notifications: int | None
    failed_notifications_capped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(s.up and s.database == "ok" for s in self.services)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "healthy": self.healthy}


def monitor_subscribers(monitor_urls: list[str]) -> dict[str, int]:
    """Client connections subscribed to each service's ping in its queue group, over every server's
    monitoring endpoint (`GET <url>/connz?subs=detail`). Raises OSError or ValueError when an endpoint
    cannot be read."""
    counts = dict.fromkeys(SERVICES, 0)
    pings = {operations.ping(service).subject: service for service in SERVICES}
    for url in monitor_urls:
        offset = 0
        while True:
            with urllib.request.urlopen(f"{url.rstrip('/')}/connz?subs=detail&limit=1024&offset={offset}",
                                        timeout=MONITOR_TIMEOUT) as response:
                page = json.loads(response.read())
            connections = page.get("connections") or []
            for connection in connections:
                for sub in connection.get("subscriptions_list_detail") or []:
                    service = pings.get(sub.get("subject", ""))
                    if service and sub.get("qgroup") == service:
                        counts[service] += 1
            offset += len(connections)
            if not connections or offset >= page.get("total", 0):
                break
    return counts


async def _pings(nc: Client, service: str) -> tuple[list[Pong], str | None]:
    async def one() -> Pong | str:
        try:
            reply = await nc.request(operations.ping(service).subject, Ping().model_dump_json().encode(),
                                     timeout=PING_TIMEOUT)
        except nats.errors.NoRespondersError:
            return "no replica is running"
        except nats.errors.TimeoutError:
            return f"no answer within {PING_TIMEOUT:.0f} s"
        answer = json.loads(reply.data or b"{}")
        if "data" not in answer:
            return f"{answer.get('error')}: {answer.get('message', '')}"
        return Pong.model_validate(answer["data"])

    results = await asyncio.gather(*(one() for _ in range(PINGS)))
    pongs = [r for r in results if isinstance(r, Pong)]
    errors = [r for r in results if isinstance(r, str)]
    return pongs, (errors[0] if errors and not pongs else None)


async def _failed_notifications(nc: Client) -> int | None:
    request = ListNotifications(status="failed", limit=FAILED_LIMIT)  # type: ignore[arg-type]
    try:
        reply = await nc.request(operations.notifications.list_notifications.subject,
                                 request.model_dump_json().encode(), timeout=PING_TIMEOUT * 2)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        return None
    answer = json.loads(reply.data or b"{}")
    if "data" not in answer:
        return None
    return len(answer["data"].get("notifications", []))


async def _dead_letter_count(nc: Client) -> int:
    try:
        info = await nc.jetstream().stream_info(DLQ_STREAM)
    except NotFoundError:
        return 0  # no service has run against this server yet
    return info.state.messages


async def gather(nc: Client, nats_url: str, monitor_urls: list[str] | None = None) -> Status:
    """One reading of everything `portico status` shows (see the module docstring)."""
    notes = []
    counted: dict[str, int] | None = None
    if monitor_urls:
        try:
            counted = await asyncio.to_thread(monitor_subscribers, monitor_urls)
        except (OSError, ValueError) as exc:
            notes.append(f"replicas counted from answers: monitoring endpoint unreadable ({exc})")
    else:
        notes.append("replicas: those seen answering pings (set PORTICO_NATS_MONITOR_URL to count them all)")
    pinged = await asyncio.gather(*(_pings(nc, service) for service in SERVICES))
    services = []
    for service, (pongs, error) in zip(SERVICES, pinged, strict=True):
        seen = len({pong.instance for pong in pongs})
        replicas, source = (counted[service], "monitor") if counted is not None else (seen, "answers")
        if not pongs:
            services.append(ServiceStatus(service, False, replicas, source, error=error))
            continue
        database = "ok" if all(p.database == "ok" for p in pongs) else "error"
        services.append(ServiceStatus(service, True, max(replicas, seen) if source == "monitor" else replicas,
                                      source, database, max(p.outbox_pending for p in pongs)))
    lags = [{**asdict(lag), "last_active": lag.last_active.isoformat() if lag.last_active else None}
            for lag in await consumer_lags(nc.jetstream())]
    failed = await _failed_notifications(nc)
    return Status(at=datetime.now(UTC).isoformat(timespec="seconds"), nats_url=nats_url, services=services,
                  consumers=lags, dead_letters=await _dead_letter_count(nc), failed_notifications=failed,
                  failed_notifications_capped=failed is not None and failed >= FAILED_LIMIT, notes=notes)


def render(status: Status) -> str:
    """The one screen `portico status` prints."""
    lines = [f"Portico status at {status.at} (NATS {status.nats_url})", "",
             f"{'SERVICE':<15}{'STATE':<7}{'REPLICAS':>9}  {'DATABASE':<9}{'OUTBOX':>7}"]
    for s in status.services:
        if s.up:
            lines.append(f"{s.name:<15}{'up':<7}{s.replicas:>9}  {s.database or '-':<9}{s.outbox_pending:>7}")
        else:
            lines.append(f"{s.name:<15}{'DOWN':<7}{s.replicas:>9}  {'-':<9}{'-':>7}  {s.error or ''}".rstrip())
    lines += ["", f"{'CONSUMER':<34}{'STREAM':<15}{'PENDING':>8}{'UNACKED':>9}{'REDELIVERED':>13}"]
    if not status.consumers:
        lines.append("(no durable consumers yet)")
    for c in status.consumers:
        lines.append(f"{c['consumer']!s:<34}{c['stream']!s:<15}{c['pending']!s:>8}{c['unacked']!s:>9}"
                     f"{c['redelivered']!s:>13}")
    failed = ("unknown (the notifications service is down)" if status.failed_notifications is None
              else f"{status.failed_notifications}{'+' if status.failed_notifications_capped else ''}")
    lines += ["", f"Dead letters:          {status.dead_letters}   (portico dlq list)",
              f"Failed notifications:  {failed}   (portico notifications failed)"]
    lines += [f"Note: {note}" for note in status.notes]
    lines.append("" if status.healthy else "NOT HEALTHY: " + ", ".join(
        s.name + (" down" if not s.up else " database error") for s in status.services
        if not (s.up and s.database == "ok")))
    return "\n".join(lines).rstrip("\n")
