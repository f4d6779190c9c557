"""Fixtures: real nats-server processes on free ports, real databases (SQLite files, and PostgreSQL
when PORTICO_TEST_POSTGRES_URL is set), services running in-process with their real wiring."""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import uvicorn

from services.runtime.migrations import upgrade
from services.runtime.nats import EmbeddedNats, free_port
from services.runtime.service import Service
from services.runtime.settings import Settings
from tests.helpers import Gateway, wait_for_http, wait_until
from tests.kit.databases import create_database, drop_databases

POSTGRES_URL = os.environ.get("PORTICO_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats").start()
    yield server
    server.stop()


class Databases:
    """One database per service, as in production; created empty and migrated on first use."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.urls: dict[str, str] = {}
        self._created: list[str] = []

    def url(self, service: str) -> str:
        if service not in self.urls:
            self.urls[service] = self._create(service)
            upgrade(service, self.urls[service])
        return self.urls[service]

    def _create(self, service: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_path / f'{service}.sqlite3'}"
        name, url = create_database(POSTGRES_URL or "", "portico_t", service)
        self._created.append(name)
        return url

    def drop_all(self) -> None:
        drop_databases(POSTGRES_URL or "", self._created)


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    dbs = Databases(request.param, tmp_path)
    yield dbs
    dbs.drop_all()


def make_settings(nats_url: str, databases: Databases, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        # dev: the suite talks plain http to 127.0.0.1, where a Secure cookie would not come back.
        env="dev", nats_url=nats_url, data_dir=data_dir, max_deliver=3, redelivery_backoff=(0.1, 0.2),
        # A generous request timeout: on a loaded machine an fsynced JetStream write can stall for
        # seconds, and a test must not fail for that (no test waits for a timeout).
        relay_poll_interval=0.2, rpc_timeout=10.0, inbound_smtp_port=free_port(),
        **{f"{s}_database_url": databases.url(s) for s in ("auth", "conversations", "notifications", "kb")},
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(nats_server: EmbeddedNats, databases: Databases, tmp_path: Path) -> Settings:
    return make_settings(nats_server.url, databases, tmp_path / "var")


@pytest.fixture
async def start_service() -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    """`await start_service(build, settings, **overrides)` runs a service until the test ends."""
    running: list[Service] = []

    async def start(build: Callable[..., Service], settings: Settings, **overrides: object) -> Service:
        service = build(settings, **overrides)
        await service.start()
        running.append(service)
        return service

    yield start
    for service in reversed(running):
        await service.stop()


@pytest.fixture
async def stack(settings: Settings, start_service):  # type: ignore[no-untyped-def]
    """auth, conversations, notifications and kb running, as `make run` starts them."""
    from services.auth.app import build as auth
    from services.conversations.app import build as conversations
    from services.kb.app import build as kb
    from services.notifications.app import build as notifications

    return {name: await start_service(build, settings) for name, build in
            (("auth", auth), ("conversations", conversations), ("notifications", notifications), ("kb", kb))}


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The real gateway served by uvicorn on a free port."""
    from services.gateway.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on", proxy_headers=False))
    task = asyncio.create_task(server.serve())
    gw = Gateway(f"http://127.0.0.1:{port}")
    await wait_until(lambda: server.started, timeout=10)
    await wait_for_http(gw, "/healthz", 200)
    yield gw
    await gw.client.aclose()
    server.should_exit = True
    await task
