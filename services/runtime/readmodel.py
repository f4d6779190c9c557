"""Writing read models from events: one statement an event, and never an older version over a newer."""

from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, SQLModel


@lru_cache(maxsize=256)
def _upsert_statement(model: type[SQLModel], columns: tuple[str, ...], key: str, version: str,
                      dialect: str) -> Insert:
    table: Table = model.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={name: statement.excluded[name] for name in columns if name != key},
        where=table.c[version] < statement.excluded[version],
    )


def upsert_newer(session: Session, model: type[SQLModel], values: dict[str, Any], *,
                 key: str = "id", version: str = "version") -> None:
    """Insert the row, or update it only when `values[version]` is newer than the stored one.

    One INSERT .. ON CONFLICT DO UPDATE .. WHERE statement (SQLite and PostgreSQL), built once per
    shape and reused: no read before the write and no ORM flush, so a batch of events stays cheap.
    """
    statement = _upsert_statement(model, tuple(values), key, version, session.get_bind().dialect.name)
    session.connection().execute(statement, values)


def insert_once(session: Session, model: type[SQLModel], values: dict[str, Any], *, key: str) -> None:
    """Insert the row unless one with the same `key` exists (a replayed event, a repeated id): one statement."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.connection().execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=[table.c[key]]))
