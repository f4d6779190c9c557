"""Transactional outbox: events are rows written in the same transaction as the state change,
then published to JetStream by a relay, in order, with `Nats-Msg-Id` so that retries are de-duplicated.
"""

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from nats.js import JetStreamContext
from sqlalchemy import Engine, insert, update
from sqlmodel import Field, Session, SQLModel, col, delete, func, select

from contracts.envelope import Event, EventEnvelope
from services.runtime.db import READ_ONLY, UtcDateTime, write_lock
from services.runtime.logging import current_correlation_id, get_logger

log = get_logger("portico.outbox")

T = TypeVar("T")

PUBLISH_ACK_TIMEOUT = 5.0
OUTBOX_WRITTEN = "portico_outbox_written"
PRUNE_EVERY = 600.0  # seconds between clean-ups of old published rows


class OutboxRecord(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True, description="Publication order.")
    event_id: str = Field(max_length=26, unique=True)
    subject: str = Field(max_length=255)
    payload: str
    correlation_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    published_at: datetime | None = Field(default=None, index=True, sa_type=UtcDateTime)


def record_event(session: Session, event: Event, *, org_id: str, aggregate_id: str, aggregate_version: int,
                 causation_id: str | None = None) -> EventEnvelope:
    """Add `event` to the outbox inside the caller's transaction; it is published after commit."""
    envelope = EventEnvelope.wrap(
        event, org_id=org_id, aggregate_id=aggregate_id, aggregate_version=aggregate_version,
        correlation_id=current_correlation_id(), causation_id=causation_id)
    session.info[OUTBOX_WRITTEN] = True  # tells the caller to wake the relay after commit
    # A Core insert on the session's connection: part of the same transaction, without an ORM flush.
    session.connection().execute(insert(OutboxRecord), {
        "event_id": envelope.id, "subject": event.subject(), "payload": envelope.model_dump_json(),
        "correlation_id": envelope.correlation_id, "created_at": envelope.occurred_at})
    return envelope


def pending_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(OutboxRecord).where(
        col(OutboxRecord.published_at).is_(None))).one()


class OutboxRelay:
    """Publishes committed outbox rows in `seq` order.

    A batch is sent pipelined (`publish_async`) and only the prefix acknowledged by JetStream is
    marked published; the rest is sent again on the next pass. A crash anywhere in between
    therefore re-sends, never loses, and JetStream drops the re-sends it has already stored
    (same `Nats-Msg-Id` within the stream's duplicate window). Consumers' inboxes catch any later one.
    """

    def __init__(self, engine: Engine, jetstream: Callable[[], JetStreamContext], *,
                 batch: int = 500, poll_interval: float = 1.0, retention: timedelta = timedelta(days=7)) -> None:
        self._engine = engine
        self._jetstream = jetstream
        self._batch = batch
        self._poll_interval = poll_interval
        self._retention = retention
        self._next_prune = 0.0
        self._wake = asyncio.Event()
        # Its own thread: request handlers filling the shared pool never delay publication.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-relay")
        self.published_total = 0

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows: publish now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        delay = 0.05
        while True:
            try:
                sent = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS down, DB busy: keep the rows, try again later
                log.warning("outbox relay could not publish; will retry", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            if sent >= self._batch:
                continue
            await self._prune_now_and_then()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def publish_pending(self) -> int:
        """One pass: publish up to a batch of pending rows; returns how many were marked published."""
        self._wake.clear()
        rows = await self._in_thread(self._load_pending)
        if not rows:
            return 0
        js = self._jetstream()
        futures = []
        for seq, event_id, subject, payload, correlation in rows:
            futures.append((seq, await js.publish_async(
                subject, payload.encode(),
                headers={"Nats-Msg-Id": event_id, "correlation_id": correlation})))
        acked: list[int] = []
        failure: BaseException | None = None
        for seq, future in futures:
            if failure is None:
                try:
                    await asyncio.wait_for(asyncio.shield(future), timeout=PUBLISH_ACK_TIMEOUT)
                    acked.append(seq)
                    continue
                except Exception as exc:
                    failure = exc
            future.cancel()
        if acked:
            await self._in_thread(self._mark_published, acked)
            self.published_total += len(acked)
        if failure is not None:
            raise failure
        return len(acked)

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY
        try:
            removed = await self._in_thread(self.prune)
        except Exception as exc:
            log.warning("outbox prune failed", error=repr(exc))
            return
        if removed:
            log.info("outbox pruned", removed=removed, retention_hours=self._retention.total_seconds() / 3600)

    def prune(self) -> int:
        """Delete rows published longer ago than the retention; unpublished rows are never touched."""
        cutoff = datetime.now(UTC) - self._retention
        with write_lock(self._engine), Session(self._engine) as session:
            result = session.exec(delete(OutboxRecord).where(  # type: ignore[call-overload]
                col(OutboxRecord.published_at).is_not(None), col(OutboxRecord.published_at) < cutoff))
            session.commit()
        return result.rowcount or 0

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _load_pending(self) -> list[tuple[int, str, str, str, str]]:
        with Session(self._engine.execution_options(**READ_ONLY)) as session:
            rows = session.exec(
                select(OutboxRecord.seq, OutboxRecord.event_id, OutboxRecord.subject, OutboxRecord.payload,
                       OutboxRecord.correlation_id)
                .where(col(OutboxRecord.published_at).is_(None))
                .order_by(col(OutboxRecord.seq)).limit(self._batch)).all()
            session.commit()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def _mark_published(self, seqs: list[int]) -> None:
        with write_lock(self._engine), Session(self._engine) as session:
            session.exec(update(OutboxRecord).where(col(OutboxRecord.seq).in_(seqs))  # type: ignore[call-overload]
                         .values(published_at=datetime.now(UTC)))
            session.commit()
