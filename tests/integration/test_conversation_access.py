"""Who may see and touch a customer's conversation, through the gateway with real NATS and databases.

Customer A (SSO) starts a conversation with a PNG on portal `demo`; an agent answers and closes it.
Then everybody else tries every customer endpoint on it and is refused (404 for another customer's
conversation, exactly as for a missing one; 403 `wrong_portal` for a session of another portal;
401 signed out), and nothing is stored: no message, conversation, attachment row or Object Store
object. Customers and anonymous browsers never reach the agent API; internal notes never reach a
customer.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from contracts.sessions import SESSION_COOKIE
from services.runtime.objects import ATTACHMENTS_BUCKET
from tests.fixtures.files import sample
from tests.helpers import count
from tests.kit.conversations import Demo, make_demo
from tests.kit.uploads import Stored, refusal, stored, stored_objects, upload

PNG = sample("png")


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


# -- what is stored --------------------------------------------------------------------------------


# -- the scene -------------------------------------------------------------------------------------

@dataclass
class Scene:
    demo: Demo
    ana: httpx.AsyncClient
    agent: httpx.AsyncClient
    cid: str
    message_id: str
    attachment_id: str


async def start_with_file(browser: httpx.AsyncClient, body: str = "Screenshot attached") -> dict:
    response = await browser.post("/api/v1/portals/demo/conversations", data={"subject": "Broken page", "body": body},
                                  files=upload(("screenshot.png", PNG)))
    assert response.status_code == 201, response.text
    return response.json()["conversation"]


async def ana_with_a_file(demo: Demo, *, closed: bool) -> Scene:
    ana = await demo.customer("ana@example.com")
    conversation = await start_with_file(ana)
    first = conversation["messages"][0]
    [attachment] = first["attachments"]
    agent = await demo.staff("agent@example.com", "agent")
    if closed:
        reply = await agent.post(f"/api/v1/agent/conversations/{conversation['id']}/messages", json={"body": "Fixed"})
        assert reply.status_code == 201, reply.text
        closing = await agent.post(f"/api/v1/agent/conversations/{conversation['id']}/close")
        assert closing.status_code == 200, closing.text
    return Scene(demo=demo, ana=ana, agent=agent, cid=conversation["id"], message_id=first["id"],
                 attachment_id=attachment["id"])


async def create_other_portal(demo: Demo) -> str:
    """Portal `other` in the same org, with SSO on; returns its secret."""
    created = await demo.admin.post("/api/v1/admin/portals", json={"slug": "other", "name": "Other"})
    assert created.status_code == 201, created.text
    patched = await demo.admin.patch("/api/v1/admin/portals/other/settings", json={"sso_enabled": True})
    assert patched.status_code == 200, patched.text
    kb_id = (await demo.admin.get("/api/v1/admin/portals/other")).json()["kb_id"]
    found = await demo.admin.get(f"/v1/auth/kb/{kb_id}/settings")
    assert found.status_code == 200, found.text
    return found.json()["data"]["attributes"]["secret"]


def customer_requests(portal: str, scene: Scene) -> list[tuple[str, str, str, dict]]:
    """Every customer endpoint that reaches A's conversation: (label, method, path, httpx arguments)."""
    conversation = f"/api/v1/portals/{portal}/conversations/{scene.cid}"
    return [
        ("detail", "GET", conversation, {}),
        ("post JSON", "POST", f"{conversation}/messages", {"json": {"body": "let me in"}}),
        ("post JSON with reopen", "POST", f"{conversation}/messages", {"json": {"body": "let me in", "reopen": True}}),
        ("post multipart with a file", "POST", f"{conversation}/messages",
         {"data": {"body": "let me in", "reopen": "true"}, "files": upload(("mine.png", PNG))}),
        ("reopen", "POST", f"{conversation}/reopen", {}),
        ("download the attachment", "GET", f"/api/v1/portals/{portal}/attachments/{scene.attachment_id}", {}),
    ]


# -- the intruders: (browser, portal in the path, expected status, expected error) -----------------

Intruder = tuple[httpx.AsyncClient, str, int, str]


async def another_customer_of_the_portal(scene: Scene) -> Intruder:
    return await scene.demo.customer("bo@example.com"), "demo", 404, "not_found"


async def anonymous_browser(scene: Scene) -> Intruder:
    return await scene.demo.anonymous(), "demo", 404, "not_found"


async def customer_of_other_portal_on_demo(scene: Scene) -> Intruder:
    secret = await create_other_portal(scene.demo)
    return await scene.demo.customer("carla@example.com", portal="other", secret=secret), "demo", 403, "wrong_portal"


async def customer_of_other_portal_on_other(scene: Scene) -> Intruder:
    secret = await create_other_portal(scene.demo)
    return await scene.demo.customer("carla@example.com", portal="other", secret=secret), "other", 404, "not_found"


async def owner_on_the_other_portal_path(scene: Scene) -> Intruder:
    await create_other_portal(scene.demo)
    return scene.ana, "other", 403, "wrong_portal"


async def signed_out_browser(scene: Scene) -> Intruder:
    return scene.demo.browser(), "demo", 401, "unauthorized"


async def owner_after_logout(scene: Scene) -> Intruder:
    """A second browser of A's: signs out, then replays the cookie it had (logout revokes at once)."""
    browser = await scene.demo.customer("ana@example.com")
    token = browser.cookies[SESSION_COOKIE]
    assert (await browser.delete("/api/v1/session")).status_code in (200, 204)
    browser.cookies.set(SESSION_COOKIE, token)
    assert token in browser.build_request("GET", "/api/v1/session").headers["cookie"]  # really sent again
    return browser, "demo", 401, "unauthorized"


INTRUDERS: list[Callable[[Scene], Awaitable[Intruder]]] = [
    another_customer_of_the_portal, anonymous_browser, customer_of_other_portal_on_demo,
    customer_of_other_portal_on_other, owner_on_the_other_portal_path, signed_out_browser, owner_after_logout]


@pytest.mark.parametrize("make_intruder", INTRUDERS, ids=[f.__name__ for f in INTRUDERS])
async def test_nobody_else_reads_or_changes_a_customers_conversation(demo, settings, make_intruder):
    scene = await ana_with_a_file(demo, closed=True)
    intruder, portal, status, error = await make_intruder(scene)
    ana_saw = (await scene.ana.get(f"/api/v1/portals/demo/conversations/{scene.cid}")).json()["conversation"]
    before = await stored(settings)

    failures = []
    listed = await intruder.get(f"/api/v1/portals/{portal}/conversations")
    if status == 404:  # a session of this portal: its own list, without A's conversation
        if listed.status_code != 200 or scene.cid in listed.text:
            failures.append(("list", listed.status_code, listed.text[:200]))
    elif refusal(listed) != (status, error):
        failures.append(("list", *refusal(listed)))
    for label, method, path, arguments in customer_requests(portal, scene):
        response = await intruder.request(method, path, **arguments)
        if refusal(response) != (status, error) or scene.cid in response.text or b"PNG" in response.content:
            failures.append((label, response.status_code, response.text[:200]))
    assert failures == [], f"expected {status} {error} everywhere"

    assert await stored(settings) == before
    ana_sees = (await scene.ana.get(f"/api/v1/portals/demo/conversations/{scene.cid}")).json()["conversation"]
    assert ana_sees["status"] == "closed"
    assert ana_sees["messages"] == ana_saw["messages"]


async def test_the_owner_still_reads_writes_and_downloads(demo, settings):
    """The same requests that everybody else is refused work for A: the refusals are about who asks."""
    scene = await ana_with_a_file(demo, closed=True)
    before = await stored(settings)
    listed = await scene.ana.get("/api/v1/portals/demo/conversations")
    assert [c["id"] for c in listed.json()["conversations"]] == [scene.cid]
    downloaded = await scene.ana.get(f"/api/v1/portals/demo/attachments/{scene.attachment_id}")
    assert downloaded.status_code == 200 and downloaded.content == PNG
    reopened = await scene.ana.post(f"/api/v1/portals/demo/conversations/{scene.cid}/reopen")
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["conversation"]["status"] == "open"
    posted = await scene.ana.post(f"/api/v1/portals/demo/conversations/{scene.cid}/messages",
                                  data={"body": "another one"}, files=upload(("second.png", PNG)))
    assert posted.status_code == 201, posted.text
    after = await stored(settings)
    [new_file] = posted.json()["message"]["attachments"]
    assert after.objects == before.objects | {new_file["id"]}
    assert (after.messages, after.attachments) == (before.messages + 2, before.attachments + 1)  # reopened, message


# -- the agent API ---------------------------------------------------------------------------------

def agent_requests(scene: Scene) -> list[tuple[str, str, str, dict]]:
    conversation = f"/api/v1/agent/conversations/{scene.cid}"
    return [
        ("inbox", "GET", "/api/v1/agent/conversations", {}),
        ("detail", "GET", conversation, {}),
        ("reply", "POST", f"{conversation}/messages", {"json": {"body": "agent at last"}}),
        ("internal note", "POST", f"{conversation}/messages", {"json": {"body": "psst", "internal": True}}),
        ("reply with a file", "POST", f"{conversation}/messages",
         {"data": {"body": "agent at last"}, "files": upload(("mine.png", PNG))}),
        ("close", "POST", f"{conversation}/close", {}),
        ("reopen", "POST", f"{conversation}/reopen", {}),
        ("subject", "POST", f"{conversation}/subject", {"json": {"subject": "Taken over"}}),
        ("assign", "POST", f"{conversation}/assign", {"json": {"assignee_id": None}}),
        ("attributes", "POST", f"{conversation}/attributes", {"json": {"values": {"vip": True}}}),
        ("redact", "POST", f"{conversation}/messages/{scene.message_id}/redact", {}),
        ("download", "GET", f"/api/v1/agent/attachments/{scene.attachment_id}", {}),
    ]


async def the_customer(scene: Scene) -> tuple[httpx.AsyncClient, int, str]:
    return scene.ana, 403, "forbidden"


async def an_anonymous_browser(scene: Scene) -> tuple[httpx.AsyncClient, int, str]:
    return await scene.demo.anonymous(), 403, "forbidden"


async def a_signed_out_browser(scene: Scene) -> tuple[httpx.AsyncClient, int, str]:
    return scene.demo.browser(), 401, "unauthorized"


async def a_content_manager(scene: Scene) -> tuple[httpx.AsyncClient, int, str]:
    return await scene.demo.staff("writer@example.com", "content_manager"), 403, "forbidden"


NOT_AGENTS = [the_customer, an_anonymous_browser, a_signed_out_browser, a_content_manager]


@pytest.mark.parametrize("who", NOT_AGENTS, ids=[f.__name__ for f in NOT_AGENTS])
async def test_only_agents_use_the_agent_api(demo, settings, who):
    scene = await ana_with_a_file(demo, closed=False)
    browser, status, error = await who(scene)
    agent_saw = (await scene.agent.get(f"/api/v1/agent/conversations/{scene.cid}")).json()
    before = await stored(settings)

    failures = [(label, response.status_code, response.text[:200])
                for label, method, path, arguments in agent_requests(scene)
                if refusal(response := await browser.request(method, path, **arguments)) != (status, error)]
    assert failures == [], f"expected {status} {error} everywhere"

    assert await stored(settings) == before
    assert (await scene.agent.get(f"/api/v1/agent/conversations/{scene.cid}")).json() == agent_saw


async def test_an_agent_of_the_org_reads_the_conversation_and_its_file(demo):
    scene = await ana_with_a_file(demo, closed=False)
    inbox = await scene.agent.get("/api/v1/agent/conversations")
    assert inbox.status_code == 200, inbox.text
    assert [c["id"] for c in inbox.json()["conversations"]] == [scene.cid]
    detail = await scene.agent.get(f"/api/v1/agent/conversations/{scene.cid}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["conversation"]["customer_email"] == "ana@example.com"
    [message] = detail.json()["messages"]
    assert message["body"] == "Screenshot attached"
    assert [a["id"] for a in message["attachments"]] == [scene.attachment_id]
    downloaded = await scene.agent.get(f"/api/v1/agent/attachments/{scene.attachment_id}")
    assert downloaded.status_code == 200 and downloaded.content == PNG


# -- internal notes ----------------------------------------------------------------------------------

NOTE_TEXT, NOTE_WITH_FILE_TEXT = "NOTE: customer is on the blocklist", "NOTE: see the attached internal chart"
NOTE_FILE = sample("png", 2000)  # another PNG than A's, so it cannot be mistaken for it


async def add_notes(scene: Scene) -> tuple[list[str], str]:
    """An agent's reply, then two internal notes (one with a file); returns the notes' ids and the file's id."""
    path = f"/api/v1/agent/conversations/{scene.cid}/messages"
    reply = await scene.agent.post(path, json={"body": "We are on it"})
    assert reply.status_code == 201, reply.text
    note = await scene.agent.post(path, json={"body": NOTE_TEXT, "internal": True})
    assert note.status_code == 201, note.text
    with_file = await scene.agent.post(path, data={"body": NOTE_WITH_FILE_TEXT, "internal": "true"},
                                       files=upload(("internal-chart.png", NOTE_FILE)))
    assert with_file.status_code == 201, with_file.text
    assert with_file.json()["message"]["kind"] == "note"
    [note_file] = with_file.json()["message"]["attachments"]
    return [note.json()["message"]["id"], with_file.json()["message"]["id"]], note_file["id"]


def leaks(response: httpx.Response, note_ids: list[str], note_file_id: str) -> list[str]:
    """What of the notes a customer-facing response gives away."""
    secrets = ["NOTE:", "internal-chart", note_file_id, *note_ids]
    found = [s for s in secrets if s in response.text]
    return found + (['"kind":"note"'] if '"kind":"note"' in response.text.replace(" ", "") else [])


async def test_internal_notes_never_reach_the_customer(demo):
    scene = await ana_with_a_file(demo, closed=False)
    note_ids, note_file_id = await add_notes(scene)
    conversation = f"/api/v1/portals/demo/conversations/{scene.cid}"

    listed = await scene.ana.get("/api/v1/portals/demo/conversations")
    assert listed.json()["conversations"][0]["preview"] == "We are on it"
    searched = await scene.ana.get("/api/v1/portals/demo/conversations", params={"q": "blocklist"})
    assert searched.status_code == 200 and searched.json()["conversations"] == []  # no search oracle either
    detail = await scene.ana.get(conversation)
    assert [m["body"] for m in detail.json()["conversation"]["messages"]] == ["Screenshot attached", "We are on it"]
    replied = await scene.ana.post(f"{conversation}/messages", json={"body": "Thanks"})
    assert replied.status_code == 201, replied.text
    closing = await scene.agent.post(f"/api/v1/agent/conversations/{scene.cid}/close")
    assert closing.status_code == 200, closing.text
    reopened = await scene.ana.post(f"{conversation}/reopen")
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["conversation"]["status"] == "open"
    closing = await scene.agent.post(f"/api/v1/agent/conversations/{scene.cid}/close")
    assert closing.status_code == 200, closing.text
    reopened_by_writing = await scene.ana.post(f"{conversation}/messages",
                                               data={"body": "Back again", "reopen": "true"},
                                               files=upload(("again.png", PNG)))
    assert reopened_by_writing.status_code == 201, reopened_by_writing.text
    open_list = await scene.ana.get("/api/v1/portals/demo/conversations?status=open")

    for label, response in [("list", listed), ("search", searched), ("detail", detail), ("post reply", replied),
                            ("reopen reply", reopened), ("reopening post reply", reopened_by_writing),
                            ("list after", open_list), ("detail after", await scene.ana.get(conversation))]:
        assert leaks(response, note_ids, note_file_id) == [], label

    downloaded = await scene.ana.get(f"/api/v1/portals/demo/attachments/{note_file_id}")
    assert refusal(downloaded) == (404, "not_found")
    assert NOTE_FILE not in downloaded.content


async def test_the_agent_sees_the_notes_and_their_file(demo):
    scene = await ana_with_a_file(demo, closed=False)
    note_ids, note_file_id = await add_notes(scene)
    detail = (await scene.agent.get(f"/api/v1/agent/conversations/{scene.cid}")).json()
    notes = [m for m in detail["messages"] if m["kind"] == "note"]
    assert [m["id"] for m in notes] == note_ids
    assert [m["body"] for m in notes] == [NOTE_TEXT, NOTE_WITH_FILE_TEXT]
    assert [a["id"] for a in notes[1]["attachments"]] == [note_file_id]
    downloaded = await scene.agent.get(f"/api/v1/agent/attachments/{note_file_id}")
    assert downloaded.status_code == 200 and downloaded.content == NOTE_FILE
