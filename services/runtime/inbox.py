"""Idempotent inbox: a durable JetStream consumer whose effects are exactly-once.

Each event's id is recorded in `inbox` in the same transaction as its effect, and the message
is acknowledged only after that commit. A redelivered, replayed or re-published event finds its
id there and changes nothing. A failing event is retried with backoff; after `max_deliver`
tries it goes to the dead-letter subject with its error and the stream moves on.

Inbox rows are kept `PORTICO_INBOX_RETENTION_HOURS` (default 30 days), then pruned. The streams keep
events for ever (so read models can be rebuilt), so the inbox cannot follow the stream's age limit;
a row is needed only while its event can still come back:
- JetStream redelivers an event only until it is acknowledged, which follows the commit that wrote
  the row; an ack lost to a crash brings the event back `ack_wait` (30 s) after the consumer runs
  again, and pruning starts only `INBOX_PRUNE_EVERY` after a consumer starts, so those come first.
- The relay re-sends a row it published but could not mark; JetStream drops re-sends within its
  2-minute duplicate window and the inbox catches later ones (a producer that stayed down longer
  than the retention between publishing and marking is the one case left uncaught).
- A gap-filling replay (`portico replay <service>` without `--rebuild`) reads the streams only from
  `replay_since()`: a row is written no earlier than its event was stored, so every event stored
  after that moment still has its row. `--rebuild` empties the inbox and reads everything.
"""

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, Session, SQLModel, col, delete

from contracts.envelope import Event, EventEnvelope
from contracts.subjects import STREAMS, dlq_subject
from services.runtime import tracing
from services.runtime.db import INSERTS, UtcDateTime, write_lock
from services.runtime.logging import correlation_id, get_logger
from services.runtime.metrics import consumer_batch, events_handled

log = get_logger("portico.inbox")

# How long the consumer lingers for more events once one has arrived (seconds).
DRAIN_WAIT = 0.002
# Seconds between prunings of old inbox rows; the first one comes this long after the consumer starts.
INBOX_PRUNE_EVERY = 600.0
# A gap-filling replay starts this much later than the retention allows, for clocks that disagree
# (the stream's timestamps come from the NATS server, `processed_at` from the service's host).
CLOCK_SKEW_MARGIN = timedelta(minutes=10)

EventHandler = Callable[[Session, Any, EventEnvelope], None]
"""`handler(session, event, envelope)`: applies one event inside the consumer's transaction."""

_READ_MODEL_ONLY: set[EventHandler] = set()


def read_model_only(handler: EventHandler) -> EventHandler:
    """Declare a handler that only keeps a read model: it writes no outbox rows and leaves nothing for the
    service's `after_events` listeners, so a batch of its events wakes neither the relay nor them."""
    _READ_MODEL_ONLY.add(handler)
    return handler


class InboxRecord(SQLModel, table=True):
    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=26)
    event_type: str = Field(max_length=100)
    processed_at: datetime = Field(sa_type=UtcDateTime)


@dataclass
class Subscription:
    """Events of one other service's stream that a service consumes, each with its handler."""

    source: str
    handlers: dict[type[Event], EventHandler]
    consumer: str = ""  # durable consumer name; set by the service

    @property
    def stream(self) -> str:
        return STREAMS[self.source]

    @property
    def subjects(self) -> list[str]:
        return [event.subject() for event in self.handlers]

    def handler_for(self, envelope: EventEnvelope) -> tuple[type[Event], EventHandler] | None:
        for event, handler in self.handlers.items():
            if event.type_name() == envelope.type and event.version == envelope.version:
                return event, handler
        return None


class PoisonEvent(Exception):
    """An event that can never be applied (undecodable); it goes to the dead-letter subject at once."""


class EventFailed(Exception):
    """Applying one event raised; carries which one, so the rest of its batch can go ahead."""

    def __init__(self, event_id: str, cause: BaseException) -> None:
        super().__init__(f"{event_id}: {cause!r}")
        self.event_id = event_id
        self.cause = cause


@dataclass
class _Delivery:
    msg: Msg | None
    envelope: EventEnvelope | None = None
    error: str | None = None
    subject: str = ""


@dataclass
class InboxConsumer:
    engine: Engine
    subscription: Subscription
    jetstream: Callable[[], JetStreamContext]
    after_commit: Callable[[], None] = lambda: None
    max_deliver: int = 5
    backoff: Sequence[float] = (0.5, 2.0, 10.0, 30.0)
    batch: int = 500
    ack_wait: float = 30.0
    retention: timedelta | None = None  # inbox rows older than this are pruned; None: kept for ever
    applied_total: int = 0
    dead_lettered_total: int = 0
    _stopping: bool = field(default=False, init=False)
    _next_prune: float | None = field(default=None, init=False)
    _pull: JetStreamContext.PullSubscription | None = field(default=None, init=False)
    # Its own thread: request handlers filling the shared pool never delay event processing.
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox"), init=False)

    @property
    def name(self) -> str:
        return self.subscription.consumer

    async def ensure(self) -> None:
        """Create or update the durable consumer; idempotent, safe from any number of replicas."""
        js = self.jetstream()
        config = ConsumerConfig(
            durable_name=self.name,
            filter_subjects=self.subscription.subjects,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            # Unlimited on the server: the consumer dead-letters an event after `max_deliver` failures
            # of its own, while an outage (database down) must never push events out of the stream's reach.
            max_deliver=-1,
            max_ack_pending=20_000,
        )
        await js.add_consumer(self.subscription.stream, config)

    async def run(self) -> None:
        """Fetch and apply batches until cancelled; survives NATS restarts."""
        while not self._stopping:
            await self._prune_now_and_then()
            try:
                if self._pull is None:
                    await self.ensure()
                    self._pull = await self.jetstream().pull_subscribe_bind(
                        durable=self.name, stream=self.subscription.stream)
                msgs = await self._next_batch(self._pull)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event fetch failed; retrying", consumer=self.name, error=repr(exc))
                if isinstance(exc, nats.js.errors.NotFoundError):
                    self._pull = None
                await asyncio.sleep(0.5)
                continue
            try:
                await self.handle_batch(msgs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # unacked messages come back after ack_wait
                log.error("event batch failed", consumer=self.name, error=repr(exc))
                await asyncio.sleep(0.5)

    async def _next_batch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        """Wait for the next event, then take what else is already there, up to a batch.

        One `fetch(batch)` would, when idle, hold the first event until the whole batch arrived or
        its timeout passed; waiting for one and then draining keeps latency low at any rate. The first
        event says how many more wait (`num_pending`): when none do, no drain is asked for (two pull
        requests and a timeout saved per event at low rates).
        """
        msgs = await subscription.fetch(1, timeout=5)
        waiting = _pending_after(msgs[-1]) if msgs else 0
        if self.batch > 1 and waiting:
            try:
                msgs += await subscription.fetch(min(waiting, self.batch - 1), timeout=DRAIN_WAIT)
            except (nats.errors.TimeoutError, TimeoutError):
                pass
        return msgs

    def stop(self) -> None:
        self._stopping = True

    async def _prune_now_and_then(self) -> None:
        if self.retention is None:
            return
        now = asyncio.get_running_loop().time()
        if self._next_prune is None:  # not at start: events redelivered after an outage are seen first
            self._next_prune = now + max(INBOX_PRUNE_EVERY, 2 * self.ack_wait)
        if now < self._next_prune:
            return
        self._next_prune = now + max(INBOX_PRUNE_EVERY, 2 * self.ack_wait)
        try:
            removed = await asyncio.get_running_loop().run_in_executor(self._executor, self.prune)
        except Exception as exc:
            log.warning("inbox prune failed", consumer=self.name, error=repr(exc))
            return
        if removed:
            log.info("inbox pruned", consumer=self.name, removed=removed,
                     retention_hours=self.retention.total_seconds() / 3600)

    def prune(self) -> int:
        """Delete this consumer's inbox rows processed longer ago than `retention`; returns how many.

        Safe for de-duplication: see the module's docstring. Nothing is deleted when `retention` is None.
        """
        if self.retention is None:
            return 0
        cutoff = datetime.now(UTC) - self.retention
        with write_lock(self.engine), Session(self.engine) as session:
            result = session.exec(delete(InboxRecord).where(  # type: ignore[call-overload]
                InboxRecord.consumer == self.name, col(InboxRecord.processed_at) < cutoff))
            session.commit()
        return result.rowcount or 0

    def replay_since(self) -> datetime | None:
        """Oldest stream time a gap-filling replay may read (UTC): events stored earlier may have had
        their inbox rows pruned, so applying them again could double an effect. None: from the start."""
        if self.retention is None:
            return None
        now = datetime.now(UTC)
        return min(now, now - self.retention + min(CLOCK_SKEW_MARGIN, self.retention / 2))

    async def close(self) -> None:
        """Drop the pull subscription; events fetched but not acked are redelivered to another replica."""
        if self._pull is not None:
            try:
                # Bounded: when NATS is going away at the same moment there is no one to answer.
                await asyncio.wait_for(self._pull.unsubscribe(), timeout=1.0)
            except Exception as exc:  # connection already gone
                log.debug("unsubscribe failed", consumer=self.name, error=repr(exc))
            self._pull = None

    async def handle_batch(self, msgs: list[Msg]) -> None:
        consumer_batch(self.name, msgs)
        started = time.time_ns() if tracing.ENABLED else 0
        deliveries = [self._decode(m) for m in msgs]
        for bad in (d for d in deliveries if d.envelope is None):
            await self._dead_letter(bad, bad.error or "undecodable")
        pending = [d for d in deliveries if d.envelope is not None]
        while pending:
            try:
                applied, wake = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._apply, [d.envelope for d in pending])
            except EventFailed as failed:
                # Its transaction is rolled back; the others are applied without it.
                culprit = next(d for d in pending if d.envelope.id == failed.event_id)  # type: ignore[union-attr]
                pending = [d for d in pending if d is not culprit]
                await self._retry_or_dead_letter(culprit, failed.cause)
                continue
            except Exception as exc:
                # Not the events' fault (database unreachable, ...): try them all again later, never dead-letter.
                log.error("could not apply events; will retry", consumer=self.name, error=repr(exc), count=len(pending))
                for delivery in pending:
                    await delivery.msg.nak(delay=self.backoff[-1])  # type: ignore[union-attr]
                events_handled(self.name, "retried", len(pending))
                return
            self.applied_total += applied
            events_handled(self.name, "applied", applied)
            events_handled(self.name, "duplicate", len(pending) - applied)
            if started:
                _trace_consumed(self.name, pending, started)
            if wake:
                self.after_commit()
            for delivery in pending:
                await delivery.msg.ack()  # type: ignore[union-attr]
            return

    async def _retry_or_dead_letter(self, delivery: _Delivery, cause: BaseException) -> None:
        error = f"{type(cause).__name__}: {cause}"
        msg = delivery.msg
        assert msg is not None and delivery.envelope is not None
        deliveries = msg.metadata.num_delivered
        if isinstance(cause, PoisonEvent) or deliveries >= self.max_deliver:
            await self._dead_letter(delivery, error)
            return
        delay = self.backoff[min(deliveries, len(self.backoff)) - 1]
        log.warning("event failed; will retry", consumer=self.name, event_id=delivery.envelope.id,
                    subject=delivery.subject, delivery=deliveries, retry_in=delay, error=error)
        await msg.nak(delay=delay)
        events_handled(self.name, "retried")

    def apply(self, envelopes: Iterable[EventEnvelope]) -> int:
        """Apply events in one transaction, skipping those already in the inbox; returns how many applied."""
        return self._apply(envelopes)[0]

    def _apply(self, envelopes: Iterable[EventEnvelope]) -> tuple[int, bool]:
        """`apply`, and whether `after_commit` has work: an event applied by a handler that is not
        `read_model_only`."""
        envelopes = list(envelopes)
        wake = False
        now = datetime.now(UTC)
        rows: dict[str, dict[str, object]] = {}
        for envelope in envelopes:  # an event delivered twice in one batch is applied once
            rows.setdefault(envelope.id, {"consumer": self.name, "event_id": envelope.id,
                                          "event_type": f"{envelope.type}.v{envelope.version}", "processed_at": now})
        with write_lock(self.engine), Session(self.engine, expire_on_commit=False) as session:
            # The inbox rows first, in one statement that says which were new (ON CONFLICT DO NOTHING
            # RETURNING): no read before the write, and a replica applying the same event at the same
            # moment waits on the row instead of failing at commit. The effects follow in the same transaction.
            connection = session.connection()
            new = {row[0] for row in connection.execute(_record_statement(connection.dialect.name),
                                                        list(rows.values()))}
            applied = 0
            for envelope in envelopes:
                if envelope.id not in new:
                    continue
                new.discard(envelope.id)
                token = correlation_id.set(envelope.correlation_id)
                try:
                    wake = self._apply_one(session, envelope) or wake
                except DBAPIError:
                    raise  # the database's trouble, not the event's
                except Exception as exc:
                    raise EventFailed(envelope.id, exc) from exc
                finally:
                    correlation_id.reset(token)
                applied += 1
            session.commit()
        return applied, wake

    def _apply_one(self, session: Session, envelope: EventEnvelope) -> bool:
        """Apply one event; whether its handler may have left work for after the commit."""
        found = self.subscription.handler_for(envelope)
        if found is None:
            return False  # not an event this service acts on: recorded as seen, nothing else
        event_type, handler = found
        try:
            event = event_type.model_validate(envelope.data)
        except ValidationError as exc:
            raise PoisonEvent(f"payload does not match {event_type.__name__}: {exc.errors()[:3]}") from exc
        handler(session, event, envelope)
        return handler not in _READ_MODEL_ONLY

    def _decode(self, msg: Msg) -> _Delivery:
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
        except ValidationError as exc:
            return _Delivery(msg, error=f"undecodable event: {exc.errors()[:3]}", subject=msg.subject)
        return _Delivery(msg, envelope, subject=msg.subject)

    async def _dead_letter(self, delivery: _Delivery, error: str) -> None:
        msg = delivery.msg
        assert msg is not None
        event_id = delivery.envelope.id if delivery.envelope else (msg.headers or {}).get("Nats-Msg-Id", "")
        headers = {
            "Nats-Msg-Id": f"{self.name}:{event_id or msg.metadata.sequence.stream}",
            "Portico-Error": error[:2000].replace("\r", " ").replace("\n", " "),
            "Portico-Consumer": self.name,
            "Portico-Original-Subject": msg.subject,
            "Portico-Stream-Sequence": str(msg.metadata.sequence.stream),
            "Portico-Deliveries": str(msg.metadata.num_delivered),
            "Portico-Failed-At": datetime.now(UTC).isoformat(),
        }
        await self.jetstream().publish(dlq_subject(self.name, msg.subject), msg.data, headers=headers)
        await msg.term()
        self.dead_lettered_total += 1
        events_handled(self.name, "dead_lettered")
        log.error("event dead-lettered", consumer=self.name, event_id=event_id, subject=msg.subject,
                  deliveries=msg.metadata.num_delivered, error=error)

    def reset(self, session: Session) -> None:
        """Forget which events were applied (before a rebuild from the streams)."""
        session.exec(delete(InboxRecord).where(InboxRecord.consumer == self.name))  # type: ignore[call-overload]


@lru_cache(maxsize=4)
def _record_statement(dialect: str) -> Any:
    """INSERT INTO inbox .. ON CONFLICT DO NOTHING RETURNING event_id: the ids of the rows it wrote."""
    table = InboxRecord.__table__  # type: ignore[attr-defined]
    return INSERTS[dialect](table).on_conflict_do_nothing(index_elements=[table.c.consumer, table.c.event_id]).returning(
        table.c.event_id)


def _pending_after(msg: Msg) -> int:
    """How many of the consumer's events the server still held when it delivered `msg` (1 when unknown)."""
    try:
        return msg.metadata.num_pending
    except Exception:  # not a JetStream delivery (a test's plain message): drain as before
        return 1


def _trace_consumed(consumer: str, deliveries: "list[_Delivery]", started: int) -> None:
    """One consumer span per applied event (from the batch's start to now), continuing the `traceparent`
    the event was published with (services.runtime.tracing)."""
    for delivery in deliveries:
        headers = (delivery.msg.headers if delivery.msg is not None else None) or {}
        with tracing.span(f"{consumer} {delivery.subject}", kind="CONSUMER", parent=headers, start_time=started,
                          attributes={"messaging.consumer.group.name": consumer,
                                      "messaging.message.id": delivery.envelope.id if delivery.envelope else ""}):
            pass


def decode_envelopes(lines: Iterable[str]) -> list[EventEnvelope]:
    """Envelopes from JSON lines (a recorded event log); blank lines are skipped."""
    return [EventEnvelope.model_validate(json.loads(line)) for line in lines if line.strip()]


async def replay_stream(js: JetStreamContext, consumer: InboxConsumer, batch: int = 500,
                        since: datetime | None = None) -> int:
    """Read the consumer's subjects from the start of the stream (or from the events stored at `since`,
    UTC, onwards) and apply them through its inbox; returns how many were applied. A stream that does
    not exist yet holds nothing: 0."""
    stream = consumer.subscription.stream
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        return 0
    last = info.state.last_seq
    if info.state.messages == 0:
        return 0
    start = ({"deliver_policy": DeliverPolicy.ALL} if since is None
             else {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": since})
    ephemeral = await js.add_consumer(stream, ConsumerConfig(
        filter_subjects=consumer.subscription.subjects, ack_policy=AckPolicy.NONE, inactive_threshold=60, **start))
    sub = await js.pull_subscribe_bind(consumer=ephemeral.name, stream=stream)
    applied = 0
    try:
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=2)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            envelopes = [EventEnvelope.model_validate_json(m.data) for m in msgs]
            applied += await asyncio.get_running_loop().run_in_executor(consumer._executor, consumer.apply, envelopes)
            if msgs[-1].metadata.sequence.stream >= last:
                break
    finally:
        await sub.unsubscribe()
    return applied
