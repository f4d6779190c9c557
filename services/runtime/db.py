"""Database engines: SQLite file by default, PostgreSQL when a URL says so."""

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Dialect, Engine, Table, TypeDecorator, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlmodel import Session


class _UtcDateTime(TypeDecorator[datetime]):
    """Every timestamp column: UTC in, aware UTC out, on SQLite (which keeps no zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Portico stores UTC times with their zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = _UtcDateTime()

READ_ONLY = {"portico_read_only": True}
"""Execution options of a read-only transaction: on SQLite it neither takes nor waits for the write lock."""

# SQLite has one writer at a time, and a waiting writer sleeps in steps of up to 100 ms. Writers of
# one process queue on this lock instead and start the moment the previous one commits.
_write_locks: "weakref.WeakKeyDictionary[Engine, threading.Lock]" = weakref.WeakKeyDictionary()


def write_lock(engine: Engine) -> AbstractContextManager[object]:
    """Hold while a write transaction runs: serialises this process's SQLite writers; no-op elsewhere."""
    return _write_locks.get(engine) or nullcontext()


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True)

    # `hide_parameters`: a statement's error names no value it was given (an e-mail's text holds an access code).
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take over transaction control from pysqlite so that every transaction can be IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL + NORMAL: ~2.5x the commits of the default and still crash-safe (only the last commits
        # before a power cut can be lost, never corrupted). busy_timeout: several processes write.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted content is overwritten, not left in free pages: a redacted message is really gone.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front: two writers wait for each other (busy_timeout)
        # instead of failing when a read lock cannot be upgraded. Readers need no lock in WAL mode.
        # Sent on the DBAPI connection: the statement has no parameters and no result to wrap.
        read_only = connection.get_execution_options().get("portico_read_only")
        begin = _BEGIN_READ if read_only else _BEGIN_WRITE
        try:
            connection.connection.dbapi_connection.execute(begin)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(begin, None, exc, sqlite3.Error, dialect=connection.dialect) from exc

    _write_locks[engine] = threading.Lock()
    return engine


_BEGIN_READ, _BEGIN_WRITE = "BEGIN", "BEGIN IMMEDIATE"


def connection_of(session: Session) -> Connection:
    """`session.connection()`, looked up once per transaction (or savepoint) and then kept in
    `session.info`: the session's lookup costs ~15 µs, and a write path asks for the connection at every
    statement. A savepoint begun since is begun by the lookup, as `session.connection()` begins it."""
    current = session.get_nested_transaction() or session.get_transaction()
    known = session.info.get(_CONNECTION)
    if known is not None and current is not None and known[0] is current:
        return known[1]
    connection = session.connection()
    session.info[_CONNECTION] = (session.get_nested_transaction() or session.get_transaction(), connection)
    return connection


_CONNECTION = "portico_connection"
_GIVEN = object()  # a parameter the caller gives (no value in the statement)


# Each database's own INSERT (with its `on_conflict_do_nothing` / `_do_update`), by `connection.dialect.name`.
INSERTS: dict[str, Callable[[Table], Insert]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def prepared_inserts(table: Table, build: Callable[[Insert], Executable]) -> dict[str, "Prepared"]:
    """`build(insert(table))` with each database's own INSERT (`INSERTS`), prepared: {dialect name
    ("postgresql", "sqlite"): `Prepared`}; pick by `connection.dialect.name`."""
    return {name: Prepared(build(insert(table))) for name, insert in INSERTS.items()}


class Prepared:
    """A Core statement compiled once per dialect and run on the DBAPI cursor of a `Connection`.

    For the statements of the hot write paths: `Connection.execute` spends 30-70 µs on the compiled
    cache, the execution context and the `Result` of a statement whose database work takes 5-10 µs.
    The parameters go through the statement's bind processors (UTC datetimes, JSON), the rows of a
    SELECT or RETURNING through its columns' result processors, as `Connection.execute` applies them,
    and a DBAPI error is raised as SQLAlchemy raises it (`IntegrityError`, ...). Every parameter the
    statement binds must be given: Python-side column defaults are not applied. It runs inside the
    transaction the caller began on `connection` (`connection_of(session)`).
    """

    __slots__ = ("statement", "_by_dialect")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[tuple[Any, ...], _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> "_Compiled":
        key = (type(dialect), dialect.paramstyle, dialect.server_version_info)
        compiled = self._by_dialect.get(key)
        if compiled is None:  # two threads may both compile it: the same result
            compiled = self._by_dialect[key] = _Compiled(self.statement, dialect)
        return compiled

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """Run the statement with `params` (by bind name); returns the DBAPI cursor (close it after reading)."""
        compiled = self._compiled(connection.dialect)
        return compiled.run(connection, compiled.parameters(params), many=False)

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once for each of `rows` (`executemany`), reading nothing back."""
        compiled = self._compiled(connection.dialect)
        compiled.run(connection, [compiled.parameters(row) for row in rows], many=True).close()

    def first(self, connection: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row (column key -> value, processed), or None when there is none."""
        compiled = self._compiled(connection.dialect)
        cursor = compiled.run(connection, compiled.parameters(params), many=False)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        return {key: value if process is None else process(value)
                for key, process, value in zip(compiled.keys, compiled.results, row)}


class _Compiled:
    """A statement's SQL for one dialect, with what to do to each parameter and each result column."""

    __slots__ = ("sql", "positional", "binds", "keys", "results", "_dbapi_error")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.escaped_bind_names or "POSTCOMPILE" in compiled.string:
            raise ValueError("Prepared statements take plain bound parameters only")
        self.sql = compiled.string
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        self.positional = compiled.positional
        names = compiled.positiontup if compiled.positional else list(by_name)
        self.binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...] = tuple(
            (name, _GIVEN if by_name[name].required else by_name[name].effective_value,
             by_name[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names or ())
        columns = list(getattr(statement, "exported_columns", ()) or ())
        self.keys = tuple(column.key for column in columns)
        self.results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                             for column in columns)
        self._dbapi_error: type[Exception] = dialect.loaded_dbapi.Error

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = []
        for name, fixed, process in self.binds:
            value = params.get(name, fixed)
            if value is _GIVEN:
                raise KeyError(f"no value for the parameter '{name}'")
            values.append(value if process is None else process(value))
        return tuple(values) if self.positional else dict(zip((name for name, _, _ in self.binds), values))

    def run(self, connection: Connection, parameters: Any, *, many: bool) -> Any:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(self.sql, parameters)
            else:
                cursor.execute(self.sql, parameters)
        except self._dbapi_error as exc:
            cursor.close()
            dialect = connection.dialect
            gone = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
            if gone:
                connection.invalidate(exc)
            raise DBAPIError.instance(self.sql, parameters, exc, self._dbapi_error, dialect=dialect,
                                      connection_invalidated=gone) from exc
        return cursor


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with write_lock(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
