"""The portal's live-update stream read as a browser's EventSource reads it (`Stream`), for the tests of
live updates (tests/integration/test_portal_events.py, tests/web/test_portal_live.py)."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn

from services.runtime.nats import free_port
from tests.helpers import wait_until
from tests.kit.conversations import start

LIVE = "/api/v1/portals/demo/events"


class Stream:
    """A live-update stream read as a browser's EventSource reads it; `next()` is the next event."""

    def __init__(self, browser: httpx.AsyncClient, base_url: str | None = None, last_event_id: str | None = None):
        self.browser = browser
        self.url = (base_url or "") + LIVE
        self.headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id
        self.events: asyncio.Queue[dict[str, str] | None] = asyncio.Queue()
        self.raw = ""
        self.position = ""  # the id the stream opened with
        self.ended = asyncio.Event()

    async def __aenter__(self) -> "Stream":
        self.response = await self.browser.send(self.browser.build_request("GET", self.url, headers=self.headers),
                                                stream=True)
        assert self.response.status_code == 200, await self.response.aread()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.reader = asyncio.create_task(self._read())
        opening = await self.next(5)
        assert opening.get("event") == "ready" and opening["retry"] == "3000", opening
        self.position = opening["id"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.reader.cancel()
        await self.response.aclose()

    async def _read(self) -> None:
        event: dict[str, str] = {}
        async for line in self.response.aiter_lines():
            self.raw += line + "\n"
            if line == "":
                if event and not event.get("comment", "").startswith("ping"):
                    await self.events.put(event)
                event = {}
                continue
            name, _, value = line.partition(":")
            event[name or "comment"] = value[1:] if value.startswith(" ") else value
        self.ended.set()
        await self.events.put(None)

    async def next(self, timeout: float = 5) -> dict[str, str]:
        event = await asyncio.wait_for(self.events.get(), timeout)
        assert event is not None, "the stream ended"
        return event

    async def notice(self, timeout: float = 5) -> tuple[int, dict]:
        event = await self.next(timeout)
        assert event.get("event") == "conversation", event
        return int(event["id"]), json.loads(event["data"])

    async def start(self, **fields: object) -> str:
        """Start a conversation as this stream's customer, and read its two notices (created, first message)."""
        cid = (await start(self.browser, **fields))["id"]  # type: ignore[arg-type]
        notices = [(await self.notice())[1] for _ in range(2)]
        assert [(n["conversation_id"], n["kind"]) for n in notices] == [(cid, "created"), (cid, "message")]
        return cid


@asynccontextmanager
async def another_gateway(settings) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A second replica of the gateway on its own port, on the same NATS; yields its base URL."""
    from services.gateway.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on", proxy_headers=False))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, timeout=10)
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url) as client:
        await wait_until(lambda: healthy(client), timeout=15)
    try:
        yield base_url
    finally:
        server.should_exit = True
        await task


async def healthy(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz")).status_code == 200
