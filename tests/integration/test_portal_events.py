"""The portal's live-update stream (`GET /api/v1/portals/{portal}/events`) against the real gateway, fed
by the conversations service's events over NATS: what a customer is told, and what never reaches them.

Silence is proven by order, not by waiting: the feed delivers in stream order, so when a viewer's next
notice is about something that happened later, nothing came before it.
"""

import asyncio
import time

import pytest

from services.gateway.web import routes_events
from tests.helpers import wait_until
from tests.kit.conversations import make_demo, start
from tests.kit.live import LIVE, Stream, another_gateway, healthy

SECRET_TEXT = "the answer text zebra-quokka"


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    demo.ana = await demo.customer("ana@example.com")
    demo.agent = await demo.staff("agent@example.com", "agent")
    yield demo
    await demo.admin.aclose()


async def answer(demo, cid: str, body: str = SECRET_TEXT, **extra: object) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/messages", json={"body": body, **extra})
    assert response.status_code == 201, response.text
    return response.json()




async def test_an_agent_answer_tells_the_customer_which_conversation_changed_and_nothing_more(demo) -> None:
    async with Stream(demo.ana) as stream:
        cid = await stream.start()
        await answer(demo, cid, "a note zebra", internal=True)  # an internal note: no notice
        started = time.monotonic()
        posted = await answer(demo, cid)
        seq, data = await stream.notice(timeout=2)
        assert time.monotonic() - started < 2
        # The note came first in the stream; the first notice is the answer after it.
        assert data == {"conversation_id": cid, "kind": "message", "version": data["version"]}
        assert seq > int(stream.position)
        view = (await demo.ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
        assert posted["message"]["id"] in [m["id"] for m in view["messages"]]
        assert "zebra" not in stream.raw and "Invoice" not in stream.raw and "agent@" not in stream.raw

        await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")
        assert (await stream.notice())[1]["kind"] == "status"
        redacted = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/messages/{posted['message']['id']}/redact")
        assert redacted.status_code == 200, redacted.text
        _, data = await stream.notice()
        assert data["kind"] == "redacted" and data["conversation_id"] == cid


async def test_another_customer_hears_nothing_of_it(demo) -> None:
    ana_cid = (await start(demo.ana))["id"]
    bob = await demo.customer("bob@example.com")
    bob_cid = (await start(bob, subject="Bob's own"))["id"]
    first, second = await demo.anonymous(), await demo.anonymous()
    first_cid = (await start(first, subject="Anonymous one"))["id"]
    second_cid = (await start(second, subject="Anonymous two"))["id"]
    async with Stream(demo.ana) as ana, Stream(bob) as bobs, Stream(first) as firsts, Stream(second) as seconds:
        await answer(demo, ana_cid)
        await answer(demo, first_cid)  # both anonymous browsers are the portal's one Anonymous user
        await answer(demo, bob_cid)
        await answer(demo, second_cid)
        assert (await ana.notice())[1]["conversation_id"] == ana_cid
        assert (await bobs.notice())[1]["conversation_id"] == bob_cid
        assert (await firsts.notice())[1]["conversation_id"] == first_cid
        assert (await seconds.notice())[1]["conversation_id"] == second_cid
        await answer(demo, ana_cid)
        assert (await ana.notice())[1]["conversation_id"] == ana_cid
    for raw in (bobs.raw, firsts.raw, seconds.raw):
        assert ana_cid not in raw
    assert first_cid not in seconds.raw and second_cid not in firsts.raw


async def test_a_dropped_connection_resumes_on_any_gateway_with_what_it_missed_once(demo) -> None:
    async with Stream(demo.ana) as stream:
        cid = await stream.start()
        await answer(demo, cid)
        seen, _ = await stream.notice()
    # Dropped: what happens now reaches no open stream of hers.
    await answer(demo, cid, "second")
    await answer(demo, cid, "a note", internal=True)
    await answer(demo, cid, "third")
    async with Stream(demo.ana, last_event_id=str(seen)) as resumed:
        missed = [await resumed.notice(), await resumed.notice()]
        assert [d["kind"] for _, d in missed] == ["message", "message"]
        assert seen < missed[0][0] < missed[1][0]
        await answer(demo, cid, "fourth")
        live_seq, _ = await resumed.notice()
        assert live_seq > missed[1][0]  # nothing twice: the next one is new
    # Another replica, started after all that, resumes her as well (it read the stream back).
    async with another_gateway(demo.settings) as other:
        async with Stream(demo.ana, base_url=other, last_event_id=str(missed[0][0])) as elsewhere:
            assert [(await elsewhere.notice())[0], (await elsewhere.notice())[0]] == [missed[1][0], live_seq]


async def test_every_gateway_replica_delivers(demo) -> None:
    cid = (await start(demo.ana))["id"]
    async with another_gateway(demo.settings) as other:
        async with Stream(demo.ana) as here, Stream(demo.ana, base_url=other) as there:
            await answer(demo, cid)
            assert (await here.notice(timeout=2))[1]["conversation_id"] == cid
            assert (await there.notice(timeout=2))[1]["conversation_id"] == cid


async def test_only_a_signed_in_customer_of_the_portal_gets_a_stream(demo) -> None:
    signed_out = demo.browser()
    response = await signed_out.get(LIVE, headers={"Accept": "text/event-stream"})
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    response = await demo.agent.get(LIVE, headers={"Accept": "text/event-stream"})
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    response = await demo.ana.get(LIVE)  # not asking for an event stream
    assert response.status_code == 406 and response.json()["error"] == "not_acceptable"
    await signed_out.aclose()


async def test_the_stream_ends_when_the_customer_signs_out(demo, monkeypatch) -> None:
    monkeypatch.setattr(routes_events, "SESSION_CHECK_SECONDS", 0.3)
    other_tab = demo.browser()
    other_tab.cookies = demo.ana.cookies
    async with Stream(demo.ana) as stream:
        cid = await stream.start()
        before = len(stream.raw)
        assert (await other_tab.delete("/api/v1/session")).status_code == 200
        await asyncio.wait_for(stream.ended.wait(), 5)
    await answer(demo, cid)
    assert cid not in stream.raw[before:]
    await other_tab.aclose()


async def test_an_open_stream_outlives_a_nats_restart(demo, nats_server) -> None:
    async with Stream(demo.ana) as stream:
        cid = await stream.start()
        nats_server.stop()
        nats_server.start()
        await wait_until(lambda: healthy(demo.agent), timeout=30)
        # The answer is kept in the outbox until NATS is back; the feed picks up after the last event it read.
        await answer(demo, cid)
        _, data = await stream.notice(timeout=30)
        assert data["conversation_id"] == cid and data["kind"] == "message"
