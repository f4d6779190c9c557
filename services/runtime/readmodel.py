"""Writing read models from events: one statement an event, and never an older version over a newer."""

from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam
from sqlmodel import Session, SQLModel

from services.runtime.db import INSERTS, Prepared, connection_of, prepared_inserts


@lru_cache(maxsize=256)
def _upserts(model: type[SQLModel], columns: tuple[str, ...], key: str, version: str) -> dict[str, Prepared]:
    table: Table = model.__table__  # type: ignore[attr-defined]
    given: dict[str, Any] = {name: bindparam(name) for name in columns}
    for column in table.c:  # a prepared statement applies no Python-side default: written in here
        if column.name not in given and column.default is not None:
            if not column.default.is_scalar:
                raise ValueError(f"give {table.name}.{column.name}: its default is computed per row")
            given[column.name] = column.default.arg

    def upsert(insert: Any) -> Any:
        statement = insert.values(given)
        return statement.on_conflict_do_update(
            index_elements=[table.c[key]],
            set_={name: statement.excluded[name] for name in columns if name != key},
            where=table.c[version] < statement.excluded[version])
    return prepared_inserts(table, upsert)


def upsert_newer(session: Session, model: type[SQLModel], values: dict[str, Any], *,
                 key: str = "id", version: str = "version") -> None:
    """Insert the row, or update it only when `values[version]` is newer than the stored one.

    One INSERT .. ON CONFLICT DO UPDATE .. WHERE statement (SQLite and PostgreSQL), built and compiled once
    per shape (`db.Prepared`) and run on the transaction's connection: no read before the write and no ORM
    flush, so a batch of events stays cheap. Columns not in `values` take their column's default on insert
    and are left as they are on update; a default computed per row must be given (`ValueError`)."""
    connection = connection_of(session)
    _upserts(model, tuple(values), key, version)[connection.dialect.name].execute(connection, values).close()


def insert_once(session: Session, model: type[SQLModel], values: dict[str, Any], *, key: str) -> None:
    """Insert the row unless one with the same `key` exists (a replayed event, a repeated id): one statement."""
    connection = session.connection()
    connection.execute(insert_once_statement(model.__table__, key, connection.dialect.name),  # type: ignore[attr-defined]
                       values)


@lru_cache(maxsize=32)
def insert_once_statement(table: Table, key: str | None, dialect: str) -> Any:
    """`INSERT .. ON CONFLICT (key) DO NOTHING` in `dialect`'s own words ("postgresql" or "sqlite"), built once
    per table; `key=None` skips a row that conflicts on any unique key. Run it with `Connection.execute(statement,
    values)` (one dict, or a list for executemany): the columns are those of the values, defaults applied."""
    return INSERTS[dialect](table).on_conflict_do_nothing(index_elements=[table.c[key]] if key else None)
