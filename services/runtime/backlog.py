"""What operators look at on the event backbone, read straight from JetStream (nothing is created or
changed on the server): the events consumers gave up on (the `DLQ` stream, written by
`services.runtime.inbox.InboxConsumer._dead_letter`) and how far each service's durable consumer lags
behind the stream it reads.

Used by `portico dlq list` and by the admin console's operations page (through the gateway's NATS
connection; the gateway has no database).
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.subjects import DLQ_STREAM, STREAMS

# An organisation's admin sees only their own organisation's dead letters: at most this many of the
# newest messages are read to find them, so a page never reads the whole stream.
SCAN_LIMIT = 1000


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered event: where it sits in the DLQ stream, which consumer gave up on it and why.
    `org_id` and `type` come from the event's envelope (empty for an event that could not be read)."""

    seq: int
    failed_at: str
    consumer: str
    subject: str
    event_id: str
    deliveries: str
    error: str
    org_id: str
    type: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ConsumerLag:
    """A durable consumer of a service's stream: `pending` events not yet delivered to it, `unacked`
    delivered and not yet acknowledged (being applied, or waiting for a retry)."""

    stream: str
    consumer: str
    pending: int
    unacked: int
    redelivered: int
    last_active: datetime | None

    @property
    def backlog(self) -> int:
        return self.pending + self.unacked


async def dead_letters(js: JetStreamContext, limit: int = 100, org_id: str | None = None) -> list[DeadLetter]:
    """The newest `limit` dead-lettered events, oldest first; with `org_id`, only that organisation's
    (among the newest `SCAN_LIMIT`). `[]` when the stream is empty or was never created."""
    try:
        info = await js.stream_info(DLQ_STREAM)
    except NotFoundError:
        return []  # no service has run against this server yet: nothing was dead-lettered
    if info.state.messages == 0:
        return []
    found: list[DeadLetter] = []
    last = info.state.last_seq
    oldest = max(info.state.first_seq, last - (SCAN_LIMIT if org_id else limit) + 1)
    for seq in range(last, oldest - 1, -1):
        try:
            msg = await js.get_msg(DLQ_STREAM, seq)
        except NotFoundError:
            continue
        letter = _read(seq, msg.headers or {}, msg.data or b"")
        if org_id is None or letter.org_id == org_id:
            found.append(letter)
            if len(found) >= limit:
                break
    return found[::-1]


def _read(seq: int, headers: dict[str, str], data: bytes) -> DeadLetter:
    try:
        envelope = json.loads(data or b"{}")
    except ValueError:
        envelope = {}
    if not isinstance(envelope, dict):
        envelope = {}
    return DeadLetter(seq=seq, failed_at=headers.get("Portico-Failed-At", ""),
                      consumer=headers.get("Portico-Consumer", ""),
                      subject=headers.get("Portico-Original-Subject", ""), event_id=str(envelope.get("id", "")),
                      deliveries=headers.get("Portico-Deliveries", ""), error=headers.get("Portico-Error", ""),
                      org_id=str(envelope.get("org_id", "")), type=str(envelope.get("type", "")))


async def consumer_lags(js: JetStreamContext) -> list[ConsumerLag]:
    """Every durable consumer of the services' streams, by stream then name (a stream not created yet has
    none)."""
    lags = []
    for stream in STREAMS.values():
        try:
            infos = await js.consumers_info(stream)
        except NotFoundError:
            continue
        for info in infos:
            if not (info.config and info.config.durable_name):
                continue  # the gateway's own followers (live updates, session policies) are not services
            lags.append(ConsumerLag(stream=stream, consumer=info.name, pending=info.num_pending or 0,
                                    unacked=info.num_ack_pending or 0, redelivered=info.num_redelivered or 0,
                                    last_active=info.delivered.last_active if info.delivered else None))
    return sorted(lags, key=lambda lag: (lag.stream, lag.consumer))
