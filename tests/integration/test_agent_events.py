"""The agent workspace's live-update stream (`GET /api/v1/agent/events`) against the real gateway, fed by the
conversations service's events over NATS: what staff are told (which conversation, what kind, its version,
internal notes included), how a dropped stream resumes, and who may open it."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.kit.conversations import make_demo, start

LIVE = "/api/v1/agent/events"
STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    demo.ana = await demo.customer("ana@example.com")
    demo.agent = await demo.staff("agent@example.com", "agent")
    yield demo
    await demo.admin.aclose()


class Events:
    """The stream's events as an EventSource reads them (`raw` keeps every line)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.raw = ""

    async def read(self, response: httpx.Response) -> None:
        event: dict[str, str] = {}
        async for line in response.aiter_lines():
            self.raw += line + "\n"
            if line == "":
                if event and "event" in event:
                    await self.queue.put(event)
                event = {}
                continue
            name, _, value = line.partition(":")
            event[name] = value[1:] if value.startswith(" ") else value

    async def notice(self, timeout: float = 5) -> tuple[int, dict]:
        event = await asyncio.wait_for(self.queue.get(), timeout)
        assert event["event"] == "conversation", event
        return int(event["id"]), json.loads(event["data"])


@asynccontextmanager
async def stream(client: httpx.AsyncClient, last_event_id: str | None = None) -> AsyncIterator[Events]:
    headers = {**STREAM, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    response = await client.send(client.build_request("GET", LIVE, headers=headers), stream=True)
    assert response.status_code == 200, await response.aread()
    events = Events()
    reader = asyncio.create_task(events.read(response))
    try:
        opening = await asyncio.wait_for(events.queue.get(), 5)
        assert opening["event"] == "ready" and opening["retry"] == "3000", opening
        yield events
    finally:
        reader.cancel()
        await response.aclose()


async def test_staff_hear_which_conversation_changed_notes_included_and_no_text(demo) -> None:
    async with stream(demo.agent) as events:
        cid = (await start(demo.ana, subject="Secret subject", body="secret words zebra"))["id"]
        assert (await events.notice(timeout=2))[1] == {"conversation_id": cid, "kind": "created",
                                                       "version": 1}
        assert (await events.notice(timeout=2))[1]["kind"] == "message"  # her first message
        noted = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/messages",
                                      json={"body": "a note quokka", "internal": True})
        assert noted.status_code == 201
        seq, data = await events.notice(timeout=2)
        assert data["kind"] == "note" and data["conversation_id"] == cid
        await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")
        assert (await events.notice())[1]["kind"] == "status"
    for secret in ("zebra", "quokka", "Secret subject", "ana@example.com"):
        assert secret not in events.raw

    # Dropped, then resumed: what was missed comes once, in order.
    again = await demo.ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages",
                                json={"body": "Still there?", "reopen": True})
    assert again.status_code == 201, again.text
    async with stream(demo.agent, last_event_id=str(seq)) as resumed:
        kinds = [(await resumed.notice())[1]["kind"] for _ in range(3)]
        assert kinds == ["status", "status", "message"]  # closed; reopened and her message


async def test_only_agents_and_admins_get_the_stream(demo) -> None:
    signed_out = demo.browser()
    response = await signed_out.get(LIVE, headers=STREAM)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    response = await demo.ana.get(LIVE, headers=STREAM)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    writer = await demo.staff("writer@example.com", "content_manager")
    response = await writer.get(LIVE, headers=STREAM)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    response = await demo.agent.get(LIVE)
    assert response.status_code == 406 and response.json()["error"] == "not_acceptable"
    async with stream(await demo.staff("boss@example.com", "admin")) as events:
        cid = (await start(demo.ana))["id"]
        assert (await events.notice(timeout=2))[1]["conversation_id"] == cid
