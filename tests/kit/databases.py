"""Throw-away PostgreSQL databases for the suite and the benchmarks: one per service, as in
production, created empty and dropped afterwards."""

import uuid


def plain_pg_url(url: str) -> str:
    """A PostgreSQL URL as psycopg takes it (no `+psycopg` driver, no `postgres://`), password kept."""
    from sqlalchemy.engine import make_url

    return make_url(url.replace("postgresql+psycopg://", "postgresql://").replace("postgres://", "postgresql://")
                    ).render_as_string(hide_password=False)


def create_database(server_url: str, prefix: str, service: str) -> tuple[str, str]:
    """A new empty database on the server at `server_url`: (its name, its URL)."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}_{service}"
    base = plain_pg_url(server_url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_url(base).set(database=name).render_as_string(hide_password=False)


def drop_databases(server_url: str, names: list[str]) -> None:
    """Drop the named databases, closing whatever connections are still open to them."""
    if not names:
        return
    import psycopg

    with psycopg.connect(plain_pg_url(server_url), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
