"""Reopening closed conversations under each portal policy, and the channel a reopen switches to."""


import pytest

from contracts.events import ConversationReopened, MessagePosted
from tests.helpers import count, wait_until
from tests.kit.conversations import closed_days_ago, make_demo, start
from tests.kit.streams import stream_events


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    demo.ana = await demo.customer("ana@example.com")
    demo.agent = await demo.staff("agent@example.com", "agent")
    yield demo
    await demo.admin.aclose()


async def closed_conversation(demo) -> str:  # type: ignore[no-untyped-def]
    cid = (await start(demo.ana))["id"]
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    return cid


def url(cid: str, tail: str = "") -> str:
    return f"/api/v1/portals/demo/conversations/{cid}{tail}"


async def test_a_message_on_a_closed_conversation_is_refused_unless_it_reopens(demo):
    cid = await closed_conversation(demo)
    db = demo.settings.database_url("conversations")
    before = count(db, "messages")
    refused = await demo.ana.post(url(cid, "/messages"), json={"body": "Still broken"})
    assert refused.status_code == 409 and refused.json()["error"] == "conversation_closed"
    assert count(db, "messages") == before
    posted = await demo.ana.post(url(cid, "/messages"), json={"body": "Still broken", "reopen": True})
    assert posted.status_code == 201 and posted.json()["reopened"] is True
    detail = (await demo.ana.get(url(cid))).json()["conversation"]
    assert detail["status"] == "open" and detail["messages"][-1]["body"] == "Still broken"


async def test_reopen_always_switches_answers_to_the_portal_channel(demo):
    cid = await closed_conversation(demo)
    reopened = await demo.ana.post(url(cid, "/reopen"))
    assert reopened.status_code == 200 and reopened.json()["conversation"]["status"] == "open"
    agent_view = (await demo.agent.get(f"/api/v1/agent/conversations/{cid}")).json()["conversation"]
    assert agent_view["reply_channel"] == "portal"
    answer = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/messages", json={"body": "Fixed now"})
    assert answer.json()["message"]["channel"] == "portal"

    async def published() -> bool:
        reopened = [e for e in await stream_events(demo.settings.nats_url, ConversationReopened.subject())
                    if e.aggregate_id == cid]
        posted = [e for e in await stream_events(demo.settings.nats_url, MessagePosted.subject())
                  if e.aggregate_id == cid and e.data["author_kind"] == "agent"]
        return len(reopened) == 1 and len(posted) == 1 and posted[0].data["channel"] == "portal" \
            and reopened[0].data["reopened_by_kind"] == "customer" and reopened[0].data["channel"] == "portal"

    await wait_until(published)


async def test_reopen_disabled(demo):
    await demo.settings_(reopen_enabled=False)
    cid = await closed_conversation(demo)
    for response in (await demo.ana.post(url(cid, "/reopen")),
                     await demo.ana.post(url(cid, "/messages"), json={"body": "again", "reopen": True})):
        assert response.status_code == 403 and response.json()["error"] == "reopen_disabled"
    assert (await demo.ana.get(url(cid))).json()["conversation"]["status"] == "closed"
    # Agents still can.
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/reopen")).json()["conversation"][
        "status"] == "open"


async def test_reopen_only_within_n_days_of_closing(demo):
    await demo.settings_(reopen_policy="within_days", reopen_within_days=7)
    recent, old = await closed_conversation(demo), await closed_conversation(demo)
    closed_days_ago(demo, recent, 6)
    closed_days_ago(demo, old, 8)
    assert (await demo.ana.post(url(recent, "/reopen"))).json()["conversation"]["status"] == "open"
    refused = await demo.ana.post(url(old, "/reopen"))
    assert refused.status_code == 403 and refused.json()["error"] == "reopen_window_passed"
    assert (await demo.ana.get(url(old))).json()["conversation"]["status"] == "closed"


async def test_reopen_starts_a_new_linked_conversation(demo):
    await demo.settings_(reopen_policy="new_conversation")
    cid = await closed_conversation(demo)
    reply = (await demo.ana.post(url(cid, "/reopen"))).json()["conversation"]
    assert reply["id"] != cid and reply["linked_from"] == cid and reply["status"] == "open"
    assert reply["channel"] == "portal"
    assert (await demo.ana.get(url(cid))).json()["conversation"]["status"] == "closed"
    posted = (await demo.ana.post(url(cid, "/messages"), json={"body": "one more", "reopen": True})).json()
    assert posted["conversation_id"] not in (cid, reply["id"])  # each reopen continues in a new one
    listed = [c["id"] for c in (await demo.ana.get("/api/v1/portals/demo/conversations")).json()["conversations"]]
    assert set(listed) == {cid, reply["id"], posted["conversation_id"]}
