"""Helpers for tests: polling, the gateway client, reading a service's database."""

import asyncio
import time
from collections.abc import Callable

import httpx
from sqlalchemy import text

from services.runtime.db import make_engine


class Gateway:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = httpx.AsyncClient(base_url=base_url, timeout=10)


async def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def wait_for_http(gw: Gateway, path: str, status: int, timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = await gw.client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        await asyncio.sleep(0.1)


def rows(database_url: str, sql: str, **params: object) -> list[tuple]:
    """Rows of a query on a service's database (a fresh connection, so it sees what is committed)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def count(database_url: str, table: str, where: str = "1=1", **params: object) -> int:
    return rows(database_url, f"SELECT count(*) FROM {table} WHERE {where}", **params)[0][0]


def table_counts(database_url: str) -> dict[str, int]:
    """Rows in every table of a service's database (Alembic's version table left out)."""
    from sqlalchemy import inspect

    engine = make_engine(database_url)
    try:
        names = [n for n in inspect(engine).get_table_names() if n != "alembic_version"]
        with engine.connect() as conn:
            return {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}
    finally:
        engine.dispose()


async def settled_counts(database_urls: list[str], timeout: float = 10.0) -> dict[str, dict[str, int]]:
    """`table_counts` of every database, once two readings in a row agree (events in flight applied)."""
    deadline = time.monotonic() + timeout
    before = {url: table_counts(url) for url in database_urls}
    while True:
        await asyncio.sleep(0.2)
        now = {url: table_counts(url) for url in database_urls}
        if now == before or time.monotonic() > deadline:
            return now
        before = now
