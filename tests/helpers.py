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
