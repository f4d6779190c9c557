"""Transactional outbox: events are rows written in the same transaction as the state change,
then published to JetStream by a relay, in order, with `Nats-Msg-Id` so that retries are de-duplicated.

How a row reaches the stream:
- `record_event` inserts the row and also keeps it in `session.info`; when the transaction commits,
  the committed rows are handed to the running relay of that engine in memory (`OutboxRelay.committed`),
  so publishing them needs no query. Rows of a savepoint that rolls back, or of a transaction that
  does not commit, are dropped from the hand-off with the rows themselves.
- The relay publishes handed rows without a query when they follow exactly on the last `seq` it accounted for
  (the highest `seq` its last read of the table saw, or the last row it published since). On SQLite
  every writer (every thread, process or replica) commits alone and AUTOINCREMENT numbers rows in
  commit order without gaps, so such rows have no unpublished row before them, and a handed row before
  that `seq` was published by that read. PostgreSQL hands out sequence numbers before commit, so a row
  with a lower `seq` may commit later: such a late row, when handed, is never taken as published but
  makes the relay read the table; a row of another process that commits late is found by the next read
  (at most `poll_interval` later). Its read runs in one REPEATABLE READ snapshot, so the `seq` it
  accounts for covers exactly the rows it saw: publishing the next `seq` at once keeps the order the
  read would give. Otherwise (a gap: another process or replica committed in between, a sequence number
  rolled back; the relay just started or failed) it reads the unpublished rows in `seq` order from the
  database and publishes those, as it also does every `poll_interval`: rows written by another replica,
  or by a process that died after its commit, are published all the same.
- A commit that finds the relay idle is published at once; while commits keep coming, a pass that
  publishes begins at most every `linger` seconds and takes every row committed meanwhile (a pass costs
  about the same for one row as for many).
- Publishing is a core NATS publish to the stream's subject with a reply subject of the relay's own:
  JetStream answers each with its ack (or an error) there. The rows of a pass are published together
  and their acks awaited together (one wake-up for all of them), so only an acknowledged prefix counts;
  a failed or unanswered row and every row after it are sent again, in order, after reading the table.
- Acknowledged rows are marked published in batches (one UPDATE every `MARK_EVERY` seconds or per
  `batch` rows), not one by one. A crash before marking re-sends them; JetStream drops re-sends within
  the stream's duplicate window (same `Nats-Msg-Id`) and consumers' inboxes catch any later one.
"""

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from weakref import WeakKeyDictionary

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import APIError, NoStreamResponseError
from sqlalchemy import Engine, bindparam, event, insert, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Field, Session, SQLModel, col, delete, func, select

from contracts.envelope import Event, EventEnvelope
from services.runtime.db import READ_ONLY, Prepared, UtcDateTime, connection_of, write_lock
from services.runtime import tracing
from services.runtime.logging import current_correlation_id, get_logger

log = get_logger("portico.outbox")

T = TypeVar("T")

PUBLISH_ACK_TIMEOUT = 5.0
OUTBOX_WRITTEN = "portico_outbox_written"
OUTBOX_ROWS = "portico_outbox_rows"
PRUNE_EVERY = 600.0  # seconds between clean-ups of old published rows
# Seconds an acknowledged row may wait to be marked published: one UPDATE marks all that came meanwhile
# (≈0.35 ms of CPU, so marking every 0.1 s would cost 17 µs per event at 200 events/s). A crash in between
# only re-sends them (de-duplicated); a redaction waits for the mark (up to 5 s).
MARK_EVERY = 0.25


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


class PendingRow(NamedTuple):
    """An outbox row as the relay publishes it: `seq` (order), event id (`Nats-Msg-Id`), subject,
    the envelope's JSON as bytes, correlation id."""

    seq: int
    event_id: str
    subject: str
    payload: bytes
    correlation_id: str


def record_event(session: Session, event: Event, *, org_id: str, aggregate_id: str, aggregate_version: int,
                 causation_id: str | None = None) -> EventEnvelope:
    """Add `event` to the outbox inside the caller's transaction; it is published after commit.

    Returns the envelope as it will be published. The row is also kept in `session.info`, with the
    savepoint it was written in, and handed to the engine's running relay when the outermost
    transaction commits (see the module docstring). Database errors of the insert propagate.
    """
    return record_events(session, [(event, org_id, aggregate_id, aggregate_version)], causation_id=causation_id)[0]


def record_events(session: Session, events: "Sequence[tuple[Event, str, str, int]]", *,
                  causation_id: str | None = None) -> list[EventEnvelope]:
    """`record_event` for each (event, org id, aggregate id, aggregate version), in this order (their `seq`
    order); returns their envelopes in the same order. Database errors propagate."""
    correlation_id = current_correlation_id()
    envelopes = [EventEnvelope.wrap(event, org_id=org_id, aggregate_id=aggregate_id,
                                    aggregate_version=aggregate_version, correlation_id=correlation_id,
                                    causation_id=causation_id)
                 for event, org_id, aggregate_id, aggregate_version in events]
    if not envelopes:
        return envelopes
    session.info[OUTBOX_WRITTEN] = True  # tells the caller to wake the relay after commit
    if tracing.ENABLED:
        for envelope in envelopes:
            tracing.remember(envelope.id)
    values = [{"event_id": envelope.id, "subject": event.subject(), "payload": envelope.model_dump_json(),
               "correlation_id": envelope.correlation_id, "created_at": envelope.occurred_at}
              for envelope, (event, *_) in zip(envelopes, events)]
    # A prepared insert on the session's connection: part of the same transaction, without an ORM flush.
    # (`connection_of`, which asks `session.connection()` again whenever the transaction or savepoint
    # changed: it begins the savepoint a nested transaction has not begun yet, so a row written there
    # rolls back with it.)
    connection = connection_of(session)
    seqs = []
    for row in values:
        cursor = _INSERT.execute(connection, row)
        try:
            seqs.append(cursor.fetchone()[0])
        finally:
            cursor.close()
    # Kept with the savepoint they were written in: if that savepoint rolls back, so do the rows.
    savepoint = session.get_nested_transaction()
    written = session.info.setdefault(OUTBOX_ROWS, [])
    for seq, row in zip(seqs, values, strict=True):
        written.append((savepoint, PendingRow(seq, row["event_id"], row["subject"], row["payload"].encode(),
                                              row["correlation_id"])))
    return envelopes


_INSERT = Prepared(insert(OutboxRecord).values(
    {name: bindparam(name) for name in ("event_id", "subject", "payload", "correlation_id", "created_at")})
    .returning(OutboxRecord.seq))


# Relays by engine: the one a session's committed rows are handed to (only while it runs).
_relays: "WeakKeyDictionary[Engine, OutboxRelay]" = WeakKeyDictionary()


@event.listens_for(OrmSession, "after_commit")
def _hand_committed_rows(session: OrmSession) -> None:
    # Also fired when a savepoint is released: only the outermost commit makes the rows final. It runs
    # inside `session.commit()`, while `session_scope` still holds the write lock: handed in commit order.
    if session.in_nested_transaction():
        return
    written = session.info.pop(OUTBOX_ROWS, None)
    if not written:
        return
    bind = session.bind
    relay = _relays.get(getattr(bind, "engine", bind))  # type: ignore[arg-type]
    if relay is not None:
        relay.committed([row for _, row in written])


@event.listens_for(OrmSession, "after_soft_rollback")
def _drop_rolled_back_rows(session: OrmSession, previous: SessionTransaction) -> None:
    written = session.info.get(OUTBOX_ROWS)
    if not written:
        return
    if not previous.nested:
        session.info.pop(OUTBOX_ROWS, None)
        return
    session.info[OUTBOX_ROWS] = [(savepoint, row) for savepoint, row in written
                                 if not _inside(savepoint, previous)]


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_uncommitted_rows(session: OrmSession, transaction: SessionTransaction) -> None:
    # A session closed without commit or rollback: its rows were never committed.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(OUTBOX_ROWS, None)


def _inside(savepoint: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while savepoint is not None:
        if savepoint is ended:
            return True
        savepoint = savepoint.parent
    return False


def pending_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(OutboxRecord).where(
        col(OutboxRecord.published_at).is_(None))).one()


_MARK_RUN = Prepared(update(OutboxRecord).where(col(OutboxRecord.seq) >= bindparam("first"),
                                                col(OutboxRecord.seq) <= bindparam("last"))
                     .values(published_at=bindparam("at")))


def seq_runs(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """The unbroken runs of `seqs` (any order, repeats allowed) as (first, last), ascending:
    `[5, 3, 4, 9]` -> `[(3, 5), (9, 9)]`. Every number from first to last is one of `seqs`."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


_LOAD_PENDING = text("SELECT seq, event_id, subject, payload, correlation_id FROM outbox "
                     "WHERE published_at IS NULL ORDER BY seq LIMIT :n")
_LAST_SEQ = text("SELECT max(seq) FROM outbox")


class OutboxRelay:
    """Publishes committed outbox rows in `seq` order (see the module docstring for how).

    A pass's rows are sent pipelined (acks on the relay's own reply subject) and only the prefix
    acknowledged by JetStream is marked published; after a failure the rest is read from the database
    and sent again. A crash anywhere in between therefore re-sends, never loses, and JetStream drops the
    re-sends it has already stored (same `Nats-Msg-Id` within the stream's duplicate window).
    Consumers' inboxes catch any later one.
    """

    def __init__(self, engine: Engine, client: Callable[[], NatsClient], *, batch: int = 500,
                 poll_interval: float = 1.0, linger: float = 0.0, retention: timedelta = timedelta(days=7)) -> None:
        """`linger`: seconds at least between the starts of two passes while commits keep coming (the rows
        committed meanwhile go in one pass: a pass's CPU is mostly per pass, not per row); a commit that finds
        the relay idle is published at once."""
        self._engine = engine
        self._client = client  # the connection to publish on, asked for at each pass (a broker's own)
        self._batch = batch
        self._poll_interval = poll_interval
        self._linger = linger
        self._last_publish = -linger  # when the last pass that published anything began publishing
        self._retention = retention
        self._next_prune = 0.0
        # Contiguous commit-order numbering (see the module docstring) holds on SQLite only.
        self._in_commit_order = engine.dialect.name == "sqlite"
        # One snapshot for a read's unpublished rows and its highest `seq` (SQLite's reads already are one).
        self._reader = engine.execution_options(**READ_ONLY) if self._in_commit_order else \
            engine.execution_options(isolation_level="REPEATABLE READ", **READ_ONLY)
        self._acks: _Acks | None = None
        self._handed: deque[list[PendingRow]] = deque()
        self._next_seq: int | None = None  # the row that may follow without a query; None: query first
        self._acked: list[int] = []  # acknowledged, not yet marked published
        self._acked_since = 0.0
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        # Its own thread: request handlers filling the shared pool never delay publication.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-relay")
        self.published_total = 0  # rows marked published by this relay

    def committed(self, rows: list[PendingRow]) -> None:
        """Rows of a transaction that just committed (any thread): published by the next pass."""
        self._handed.append(rows)

    def wake(self) -> None:
        """Called (in the event loop) after a commit that wrote outbox rows: publish now, not at the next poll."""
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def run(self) -> None:
        """Publish until cancelled: rows handed after commit at once (or, when the last pass that published
        began less than `linger` ago, together with those committed until `linger` after it), the database's
        unpublished rows on start and every `poll_interval` (a backlog of more than a batch pass after pass,
        without lingering); marks acknowledged rows published every `MARK_EVERY` s."""
        _relays[self._engine] = self
        self._next_seq = None
        next_poll = 0.0  # on start: whatever an earlier process left unpublished
        delay = 0.05
        try:
            more = False
            while True:
                if self._linger and not more:  # a busy relay: the rows committed meanwhile go in this pass too
                    await asyncio.sleep(self._last_publish + self._linger - time.monotonic())
                self._woken = False
                try:
                    if time.monotonic() >= next_poll:
                        next_poll = time.monotonic() + self._poll_interval
                        self._next_seq = None
                    more = await self._pass()
                    await self._mark(force=more)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NATS down, DB busy: keep the rows, read them again later
                    log.warning("outbox relay could not publish; will retry", error=repr(exc), retry_in=delay)
                    self._next_seq = None
                    self._handed.clear()  # committed, so read from the database again (bounded memory)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.05
                if more or self._woken or self._handed:
                    continue
                await self._prune_now_and_then()
                now = time.monotonic()
                wait = next_poll - now
                if self._acked:
                    wait = min(wait, self._acked_since + MARK_EVERY - now)
                await self._sleep(wait)
        except asyncio.CancelledError:
            if self._acked:  # best effort: fewer re-sends after a restart
                try:
                    await asyncio.shield(self._in_thread(self._mark_published, list(self._acked)))
                except BaseException:
                    pass
            raise
        finally:
            if _relays.get(self._engine) is self:
                del _relays[self._engine]
            self._handed.clear()

    async def publish_pending(self) -> int:
        """One full pass: publish the database's unpublished rows (up to a batch) and mark them
        published before returning; returns how many were marked."""
        self._next_seq = None
        await self._pass()
        marked = len(self._acked)
        await self._mark(force=True)
        return marked

    async def _pass(self) -> bool:
        """Publish the rows handed since the last pass, or the database's unpublished rows when the handed
        ones may have unpublished rows before them; wait for their acks. True if the database held more
        unpublished rows than a batch (they are read again once these are marked published)."""
        handed = self._take_handed()
        if self._next_seq is not None and handed and handed[0].seq < self._next_seq:
            if self._in_commit_order:
                # A row before `_next_seq` was committed when the last read ran, and was published then
                # (it is handed late, after that read).
                handed = [row for row in handed if row.seq >= self._next_seq]
            else:
                self._next_seq = None  # it may have committed after that read: read again
        if self._next_seq is not None and not handed:
            return False
        more = False
        if (self._next_seq is None or handed[0].seq != self._next_seq
                or handed[-1].seq - handed[0].seq != len(handed) - 1):
            rows, last = await self._in_thread(self._load_pending)
            more = len(rows) >= self._batch
            if self._acked:  # acknowledged by this relay, waiting for their mark
                acked = set(self._acked)
                rows = [row for row in rows if row.seq not in acked]
            # Rows committed after that read follow `last` (or come late: see the module docstring).
            self._next_seq = None if (more or last is None) else last + 1
            handed = rows
        else:
            self._next_seq = handed[-1].seq + 1
        if handed:
            await self._publish(handed)
        return more

    def _take_handed(self) -> list[PendingRow]:
        rows: list[PendingRow] = []
        while self._handed and len(rows) < self._batch:
            rows.extend(self._handed.popleft())
        if len(rows) > self._batch:
            self._handed.appendleft(rows[self._batch:])
            del rows[self._batch:]
        if len(rows) > 1 and any(a.seq > b.seq for a, b in zip(rows, rows[1:])):
            rows.sort()
        return rows

    async def _publish(self, rows: list[PendingRow]) -> None:
        self._last_publish = time.monotonic()
        client = self._client()
        acks = self._acks
        if acks is None or acks.client is not client:
            acks = _Acks(client)
            await acks.subscribe()
            self._acks = acks
        stored, failure = await acks.publish(rows)
        self._note_acked(rows[:stored])
        if failure is not None:
            self._next_seq = None  # what follows the failed row is read from the database again, in order
            raise failure

    def _note_acked(self, rows: list[PendingRow]) -> None:
        if rows and not self._acked:
            self._acked_since = time.monotonic()
        self._acked.extend(row.seq for row in rows)

    async def _mark(self, *, force: bool = False) -> None:
        if not self._acked:
            return
        if not force and len(self._acked) < self._batch and time.monotonic() < self._acked_since + MARK_EVERY:
            return
        seqs, self._acked = self._acked, []
        try:
            await self._in_thread(self._mark_published, seqs)
        except BaseException:
            self._next_seq = None  # not marked: read again and re-sent (de-duplicated)
            raise
        self.published_total += len(seqs)

    async def _sleep(self, timeout: float) -> None:
        if self._woken or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, _wake_up, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

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

    def _load_pending(self) -> tuple[list[PendingRow], int | None]:
        """Up to a batch of unpublished rows in `seq` order, and the highest `seq` written, from one snapshot."""
        with self._reader.connect() as connection:
            found = connection.execute(_LOAD_PENDING, {"n": self._batch}).all()
            last = connection.execute(_LAST_SEQ).scalar()
            connection.commit()
        return [PendingRow(seq, event_id, subject, payload.encode(), correlation)
                for seq, event_id, subject, payload, correlation in found], last

    def _mark_published(self, seqs: list[int]) -> None:
        # Acknowledged rows mostly come in unbroken runs of `seq`: one prepared range UPDATE a run, each
        # covering only acknowledged rows, instead of an IN list compiled again for every batch.
        now = datetime.now(UTC)
        runs = [{"first": first, "last": last, "at": now} for first, last in seq_runs(seqs)]
        if not runs:
            return
        with write_lock(self._engine), self._engine.begin() as connection:
            _MARK_RUN.execute_many(connection, runs)


class _Acks:
    """JetStream's answers to a relay's publishes, on a reply subscription of the relay's own:
    `<inbox>.<n>` names the relay's n-th publish, so an answer that comes after its round gave up
    (a timeout) is told apart and ignored."""

    def __init__(self, client: NatsClient) -> None:
        self.client = client
        self.prefix = client.new_inbox() + "."
        self._next = 0  # number of the next publish
        self._first = 0  # number of the current round's first publish
        self._answers: list[BaseException | bool | None] = []  # the round's: None until answered, True: stored
        self._left = 0
        self._waiter: asyncio.Future[None] | None = None

    async def subscribe(self) -> None:
        await self.client.subscribe(self.prefix + "*", cb=self._answer)

    async def publish(self, rows: list[PendingRow]) -> tuple[int, BaseException | None]:
        """Publish `rows` in order, then wait (once, up to PUBLISH_ACK_TIMEOUT) for all their answers;
        returns how many rows from the first were stored, and the error of the first that was not (None
        when all were). Connection errors of the publish propagate."""
        loop = asyncio.get_running_loop()
        first = self._first = self._next
        self._next += len(rows)
        answers: list[BaseException | bool | None] = [None] * len(rows)
        self._answers, self._left = answers, len(rows)
        self._waiter = waiter = loop.create_future()
        try:
            for number, row in enumerate(rows, first):
                await self.client.publish(row.subject, row.payload, reply=f"{self.prefix}{number}",
                                          headers=_event_headers(row))
            if self._left:
                timer = loop.call_later(PUBLISH_ACK_TIMEOUT, _wake_up, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
        finally:
            self._answers, self._waiter = [], None  # later answers to this round are ignored
        for stored, answer in enumerate(answers):
            if answer is not True:
                return stored, answer or TimeoutError("no publish ack")
        return len(rows), None

    async def _answer(self, msg: Msg) -> None:
        try:
            index = int(msg.subject[len(self.prefix):]) - self._first
        except ValueError:
            return
        answers = self._answers
        if not 0 <= index < len(answers) or answers[index] is not None:
            return
        answers[index] = _ack_error(msg) or True
        self._left -= 1
        if not self._left and self._waiter is not None:
            _wake_up(self._waiter)


def _ack_error(msg: Msg) -> BaseException | None:
    """None when `msg` is JetStream's ack of a stored message (`{"stream": .., "seq": ..}`, a duplicate
    too), else the error it tells (no stream for the subject, an API error, anything else)."""
    status = msg.headers.get("Status") if msg.headers else None
    if status:
        return NoStreamResponseError() if status == "503" else \
            APIError(description=f"status {status} {msg.headers.get('Description', '')}")  # type: ignore[union-attr]
    data = msg.data
    if b'"error"' not in data and b'"seq"' in data:
        return None
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        try:
            APIError.from_error(answer["error"])  # raises the error's own class
        except APIError as error:
            return error
        except TypeError:
            pass
    elif isinstance(answer, dict) and "seq" in answer:
        return None
    return APIError(description=f"not a publish ack: {data[:100]!r}")


def _event_headers(row: PendingRow) -> dict[str, str]:
    """NATS headers of a published event: `Nats-Msg-Id`, `correlation_id` and, when tracing is on and
    the event was written in this process, the `traceparent` of the span that wrote it."""
    headers = {"Nats-Msg-Id": row.event_id, "correlation_id": row.correlation_id}
    if tracing.ENABLED:
        traceparent = tracing.traceparent_of(row.event_id)
        if traceparent:
            headers["traceparent"] = traceparent
    return headers


def _wake_up(waiter: "asyncio.Future[Any]") -> None:
    if not waiter.done():
        waiter.set_result(None)
