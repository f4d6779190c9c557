"""My Conversations and the agent API through the gateway, with real NATS and real databases."""

import pytest

from contracts.events import MessagePosted
from tests.helpers import wait_until
from tests.kit.conversations import make_demo, start
from tests.kit.streams import stream_events


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


async def test_customer_starts_writes_and_agent_answers(demo):
    ana = await demo.customer("ana@example.com")
    conversation = await start(ana)
    assert conversation["status"] == "open" and conversation["channel"] == "portal"
    assert [m["body"] for m in conversation["messages"]] == ["Hello, invoice 42 ..."]
    cid = conversation["id"]
    posted = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages", json={"body": "More details"})
    assert posted.status_code == 201, posted.text

    agent = await demo.staff("agent@example.com", "agent")
    inbox = await agent.get("/api/v1/agent/conversations")
    assert inbox.status_code == 200, inbox.text
    assert [c["id"] for c in inbox.json()["conversations"]] == [cid]
    reply = await agent.post(f"/api/v1/agent/conversations/{cid}/messages", json={"body": "We are on it"})
    assert reply.status_code == 201, reply.text
    note = await agent.post(f"/api/v1/agent/conversations/{cid}/messages", json={"body": "secret note",
                                                                                  "internal": True})
    assert note.status_code == 201, note.text

    listed = (await ana.get("/api/v1/portals/demo/conversations")).json()
    assert listed["conversations"][0]["unread"] is True
    assert listed["conversations"][0]["preview"] == "We are on it"
    detail = (await ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
    assert [m["body"] for m in detail["messages"]] == ["Hello, invoice 42 ...", "More details", "We are on it"]
    assert "secret note" not in str(detail)
    assert (await ana.get("/api/v1/portals/demo/conversations")).json()["conversations"][0]["unread"] is False

    async def events() -> list:
        return [e for e in await stream_events(demo.settings.nats_url, MessagePosted.subject()) if e.aggregate_id == cid]

    await wait_until(lambda: _count(events, 4))
    posted = {e.data["message_id"]: e.data for e in await events()}
    answer, internal = posted[reply.json()["message"]["id"]], posted[note.json()["message"]["id"]]
    assert (answer["author_kind"], answer["visibility"], answer["body"]) == ("agent", "public", "We are on it")
    assert answer["channel"] == "portal"
    assert answer["customer_id"] == (await ana.get("/api/v1/session")).json()["user_id"]
    # The note's text never leaves the service: not even in the event.
    assert (internal["visibility"], internal["body"], internal["attachments"]) == ("internal", "", [])
    versions = [e.aggregate_version for e in sorted(await events(), key=lambda e: e.id)]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


async def _count(events, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await events()) >= n


async def _close(agent, cid: str) -> None:  # type: ignore[no-untyped-def]
    response = await agent.post(f"/api/v1/agent/conversations/{cid}/close")
    assert response.status_code == 200 and response.json()["conversation"]["status"] == "closed", response.text


async def test_list_filters_search_and_pages_newest_activity_first(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    ids = [(await start(ana, subject=f"Question {i}", body=f"body {i} {'refund' if i % 3 == 0 else 'other'}"))["id"]
           for i in range(7)]
    await _close(agent, ids[1])
    # Writing in the oldest one makes it the newest activity.
    assert (await ana.post(f"/api/v1/portals/demo/conversations/{ids[0]}/messages",
                           json={"body": "bump"})).status_code == 201
    seen, cursor = [], None
    while True:
        page = (await ana.get("/api/v1/portals/demo/conversations",
                              params={"limit": 3, **({"cursor": cursor} if cursor else {})})).json()
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # The closing is activity the customer sees too.
    assert seen == [ids[0], ids[1], ids[6], ids[5], ids[4], ids[3], ids[2]]
    closed = (await ana.get("/api/v1/portals/demo/conversations", params={"status": "closed"})).json()
    assert [c["id"] for c in closed["conversations"]] == [ids[1]]
    assert closed["conversations"][0]["status"] == "closed"
    found = (await ana.get("/api/v1/portals/demo/conversations", params={"q": "REFUND"})).json()
    assert sorted(c["id"] for c in found["conversations"]) == sorted([ids[0], ids[3], ids[6]])
    assert (await ana.get("/api/v1/portals/demo/conversations", params={"q": "100%_"})).json()["conversations"] == []
    by_channel = (await ana.get("/api/v1/portals/demo/conversations", params={"channel": "email"})).json()
    assert by_channel["conversations"] == []
    bad = await ana.get("/api/v1/portals/demo/conversations", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    bad = await ana.get("/api/v1/portals/demo/conversations", params={"channel": "fax"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"


async def test_my_conversations_switch_and_detail_attributes(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    cid = (await start(ana))["id"]
    await agent.post(f"/api/v1/agent/conversations/{cid}/attributes", json={"values": {"order_number": "A-77"}})
    await demo.settings_(detail_attributes=[{"attribute": "custom.order_number", "display_name": "Order number"},
                                            {"attribute": "reference", "display_name": "Reference"}])
    detail = (await ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
    assert detail["attributes"] == [
        {"attribute": "custom.order_number", "display_name": "Order number", "value": "A-77"},
        {"attribute": "reference", "display_name": "Reference", "value": cid}]
    assert {"status", "channel", "created_at"} <= set(detail)
    bad = await demo.admin.patch("/api/v1/admin/portals/demo/conversation-settings",
                                 json={"detail_attributes": [{"attribute": "password", "display_name": "x"}]})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    bad = await demo.admin.patch("/api/v1/admin/portals/demo/conversation-settings", json={"reopen_policy": "never"})
    assert bad.status_code == 422
    bad = await demo.admin.patch("/api/v1/admin/portals/nowhere/conversation-settings", json={"reopen_enabled": True})
    assert bad.status_code == 404 and bad.json()["error"] == "unknown_portal"
    assert (await demo.admin.get("/api/v1/admin/portals/demo/conversation-settings")).json()["detail_attributes"][0][
        "attribute"] == "custom.order_number"

    await demo.settings_(my_conversations_enabled=False)
    for response in (await ana.get("/api/v1/portals/demo/conversations"),
                     await ana.get(f"/api/v1/portals/demo/conversations/{cid}")):
        assert response.status_code == 403 and response.json()["error"] == "my_conversations_disabled"


async def test_agent_timeline_subject_assignment_and_close(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    agent_id = (await agent.get("/api/v1/session")).json()["user_id"]
    cid = (await start(ana, subject="Old subject"))["id"]
    changed = await agent.post(f"/api/v1/agent/conversations/{cid}/subject", json={"subject": "  New   subject "})
    assert changed.json()["conversation"]["subject"] == "New subject"
    blank = await agent.post(f"/api/v1/agent/conversations/{cid}/subject", json={"subject": "   "})
    assert blank.status_code == 422
    assigned = await agent.post(f"/api/v1/agent/conversations/{cid}/assign", json={"assignee_id": agent_id})
    assert assigned.json()["conversation"]["assignee_id"] == agent_id
    not_staff = await agent.post(f"/api/v1/agent/conversations/{cid}/assign",
                                 json={"assignee_id": (await ana.get("/api/v1/session")).json()["user_id"]})
    assert not_staff.status_code == 422
    mine = (await agent.get("/api/v1/agent/conversations", params={"assignee": "me"})).json()["conversations"]
    assert [c["id"] for c in mine] == [cid]
    assert (await agent.get("/api/v1/agent/conversations", params={"assignee": "none"})).json()["conversations"] == []
    await _close(agent, cid)
    assert (await agent.get("/api/v1/agent/conversations", params={"status": "open"})).json()["conversations"] == []

    detail = (await ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
    assert detail["subject"] == "New subject" and detail["status"] == "closed" and detail["closed_at"]
    events = [m["event"] for m in detail["messages"] if m["kind"] == "event"]
    assert events == ["subject_changed", "closed"]  # the assignment is the agents' business
    full = (await agent.get(f"/api/v1/agent/conversations/{cid}")).json()
    assert [m["event"] for m in full["messages"] if m["kind"] == "event"] == ["subject_changed", "assigned", "closed"]
    missing = await agent.get("/api/v1/agent/conversations/01JD8ZQ4S5K4W3YB8W1T0VQ9E2")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
