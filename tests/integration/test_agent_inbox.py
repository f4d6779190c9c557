"""The agent inbox through the gateway, with real NATS and real databases: search (subject, the customer's
e-mail, messages and internal notes), one customer's conversations, the unread and awaiting-answer markers
of each staff member, and the staff a conversation may be assigned to."""

import pytest

from tests.helpers import wait_until
from tests.kit.conversations import make_demo, start

INBOX = "/api/v1/agent/conversations"


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


async def ids(client, **params: str) -> list[str]:  # type: ignore[no-untyped-def]
    response = await client.get(INBOX, params=params)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["conversations"]]


async def test_search_finds_subjects_addresses_messages_and_notes(demo):
    ana = await demo.customer("ana@example.com")
    bob = await demo.customer("bob@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    printer = (await start(ana, subject="Printer offline", body="It blinks orange"))["id"]
    invoice = (await start(bob, subject="Invoice 42", body="Charged twice for 100% of it"))["id"]
    noted = await agent.post(f"{INBOX}/{invoice}/messages", json={"body": "Refund approved by Zoe", "internal": True})
    assert noted.status_code == 201, noted.text

    assert await ids(agent, q="printer") == [printer]          # subject, any case
    assert await ids(agent, q="orange") == [printer]           # a customer's message
    assert await ids(agent, q="zoe") == [invoice]              # an internal note: staff read those
    assert await ids(agent, q="bob@example") == [invoice]      # the customer's address
    assert await ids(agent, q="100%") == [invoice]             # % is a character, not a wildcard
    assert await ids(agent, q="nothing like this") == []
    assert await ids(agent, q="invoice", status="closed") == []  # with the other filters

    ana_id = (await ana.get("/api/v1/session")).json()["user_id"]
    assert await ids(agent, customer_id=ana_id) == [printer]
    too_long = await agent.get(INBOX, params={"q": "x" * 201})
    assert too_long.status_code == 422 and too_long.json()["error"] == "invalid_request"


async def test_unread_and_awaiting_answer_are_each_staff_members_own(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    other = await demo.staff("other@example.com", "agent")
    cid = (await start(ana, subject="Where is my parcel?"))["id"]

    async def markers(client) -> tuple[bool, bool]:  # type: ignore[no-untyped-def]
        row = (await client.get(INBOX)).json()["conversations"][0]
        assert row["id"] == cid
        return row["unread"], row["awaiting_answer"]

    assert await markers(agent) == (True, True)
    opened = await agent.get(f"{INBOX}/{cid}")
    assert opened.status_code == 200
    assert await markers(agent) == (False, True)   # read, not answered yet
    assert await markers(other) == (True, True)    # the other agent has not opened it

    answered = await agent.post(f"{INBOX}/{cid}/messages", json={"body": "It left our warehouse today."})
    assert answered.status_code == 201
    assert await markers(agent) == (False, False)
    row = (await agent.get(INBOX)).json()["conversations"][0]
    assert row["preview"] == "It left our warehouse today."

    again = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages", json={"body": "Thanks! Tracking?"})
    assert again.status_code == 201
    assert await markers(agent) == (True, True)
    # A note or an event is no new word from the customer.
    await agent.get(f"{INBOX}/{cid}")
    await other.post(f"{INBOX}/{cid}/messages", json={"body": "I will check the carrier", "internal": True})
    assert await markers(agent) == (False, True)


async def test_assignees_are_the_orgs_staff(demo):
    agent = await demo.staff("agent@example.com", "agent")
    await demo.staff("zed@example.com", "admin")
    ana = await demo.customer("ana@example.com")

    async def listed() -> bool:
        response = await agent.get("/api/v1/agent/assignees")
        assert response.status_code == 200, response.text
        emails = [s["email"] for s in response.json()["staff"]]
        return {"agent@example.com", "zed@example.com"} <= set(emails) and emails == sorted(emails)

    await wait_until(listed)
    staff = (await agent.get("/api/v1/agent/assignees")).json()["staff"]
    assert "ana@example.com" not in {s["email"] for s in staff}
    zed = next(s for s in staff if s["email"] == "zed@example.com")
    cid = (await start(ana))["id"]
    assigned = await agent.post(f"{INBOX}/{cid}/assign", json={"assignee_id": zed["id"]})
    assert assigned.status_code == 200 and assigned.json()["conversation"]["assignee_id"] == zed["id"]
    assert await ids(agent, assignee=zed["id"]) == [cid]

    refused = await ana.get("/api/v1/agent/assignees")
    assert refused.status_code == 403
    writer = await demo.staff("writer@example.com", "content_manager")
    assert (await writer.get("/api/v1/agent/assignees")).status_code == 403


async def test_staff_list_their_organisations_portals(demo):
    agent = await demo.staff("agent@example.com", "agent")
    created = await demo.admin.post("/api/v1/admin/portals", json={"slug": "partners", "name": "Partner help"})
    assert created.status_code == 201, created.text
    listed = await agent.get("/api/v1/agent/portals")
    assert listed.status_code == 200, listed.text
    portals = listed.json()["portals"]
    assert {p["slug"] for p in portals} >= {"demo", "partners"}
    assert [p["name"] for p in portals] == sorted(p["name"] for p in portals)
    ana = await demo.customer("ana@example.com")
    assert (await ana.get("/api/v1/agent/portals")).status_code == 403


async def test_the_conversation_names_the_portals_detail_attributes(demo):
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    cid = (await start(ana))["id"]
    assert (await agent.get(f"{INBOX}/{cid}")).json()["detail_attributes"] == []
    chosen = [{"attribute": "custom.order_number", "display_name": "Order number"},
              {"attribute": "reference", "display_name": "Reference"}]
    await demo.settings_(detail_attributes=chosen)
    assert (await agent.get(f"{INBOX}/{cid}")).json()["detail_attributes"] == chosen
