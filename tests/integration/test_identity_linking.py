"""Identity linking and delayed user creation, end to end: what an anonymous or e-mail-unverified
browser created becomes the SSO customer's once they sign in in that browser (ReporterChanged), the
earlier identity stays on as a participant; a brand-new SSO customer can write at once, before
conversations has heard of them."""

import asyncio
import time

import httpx
import jwt
import pytest

from contracts.events import IdentityLinked, MessagePosted, ReporterChanged, UserRegistered
from tests.helpers import count, rows, wait_until
from tests.kit.conversations import make_demo, start
from tests.kit.streams import stream_events

SSO = "/api/v1/portals/demo/session/sso"
LIST = "/api/v1/portals/demo/conversations"


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


def token(demo, email: str, name: str | None = None) -> str:  # type: ignore[no-untyped-def]
    claims: dict = {"email": email, "iat": int(time.time())}
    if name:
        claims["displayName"] = name
    return jwt.encode(claims, demo.secret, algorithm="HS256")


async def sso_in(browser: httpx.AsyncClient, demo,  # type: ignore[no-untyped-def]
                 email: str, name: str | None = None) -> dict:
    """SSO in this browser: its current session cookie goes along, as a real browser sends it."""
    response = await browser.post(SSO, json={"token": token(demo, email, name)})
    assert response.status_code == 200, response.text
    assert response.json()["method"] == "sso"
    return response.json()


async def listed(browser: httpx.AsyncClient) -> list[str]:
    response = await browser.get(LIST)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["conversations"]]


async def wait_listed(browser: httpx.AsyncClient, conversation_id: str) -> None:
    async def there() -> bool:
        return conversation_id in await listed(browser)
    await wait_until(there, timeout=10)


async def reporter_changes(demo, conversation_id: str) -> list:  # type: ignore[no-untyped-def]
    return [e for e in await stream_events(demo.settings.nats_url, ReporterChanged.subject())
            if e.data["conversation_id"] == conversation_id]


async def test_sso_after_anonymous_takes_over_the_browsers_conversations(demo):
    first = await demo.anonymous()
    anonymous_user = (await first.get("/api/v1/session")).json()["user_id"]
    conversation = await start(first, subject="Cannot log in", body="I am locked out")
    cid = conversation["id"]
    assert await listed(first) == [cid]

    # Another anonymous browser is the same Anonymous user, yet sees nothing of the first one's.
    second = await demo.anonymous()
    assert (await second.get("/api/v1/session")).json()["user_id"] == anonymous_user
    assert await listed(second) == []
    opened = await second.get(f"{LIST}/{cid}")
    assert opened.status_code == 404 and opened.json()["error"] == "not_found"
    written = await second.post(f"{LIST}/{cid}/messages", json={"body": "hijack"})
    assert written.status_code == 404 and written.json()["error"] == "not_found"

    signed_in = await sso_in(first, demo, "linked.new@example.com", "Lina New")
    customer_id = signed_in["user_id"]
    assert customer_id != anonymous_user
    await wait_listed(first, cid)

    # The customer sees it, with its messages, from any browser they sign in to.
    elsewhere = await demo.customer("linked.new@example.com")
    assert await listed(elsewhere) == [cid]
    detail = (await elsewhere.get(f"{LIST}/{cid}")).json()["conversation"]
    assert [m["body"] for m in detail["messages"] if m["kind"] == "message"] == ["I am locked out"]
    assert "reporter_changed" not in [m.get("event") for m in detail["messages"]]  # an internal entry
    answer = await elsewhere.post(f"{LIST}/{cid}/messages", json={"body": "It is me, Lina"})
    assert answer.status_code == 201, answer.text

    agent = await demo.staff("agent@example.com", "agent")
    seen = (await agent.get(f"/api/v1/agent/conversations/{cid}")).json()
    assert seen["conversation"]["customer_id"] == customer_id
    assert seen["conversation"]["customer_email"] == "linked.new@example.com"
    assert {(p["user_id"], p["role"]) for p in seen["participants"]} == {
        (customer_id, "reporter"), (anonymous_user, "participant")}
    changed = [m for m in seen["messages"] if m.get("event") == "reporter_changed"]
    assert len(changed) == 1 and changed[0]["detail"] == {"from": anonymous_user, "to": customer_id}

    events = await reporter_changes(demo, cid)
    assert [(e.data["from_customer_id"], e.data["to_customer_id"], e.data["reason"]) for e in events] == [
        (anonymous_user, customer_id, "identity_linked")]
    # Later messages are the new reporter's: the agent's answer goes to them.
    posted = [e for e in await stream_events(demo.settings.nats_url, MessagePosted.subject())
              if e.data["conversation_id"] == cid]
    assert posted[-1].data["customer_id"] == customer_id

    # Still nothing for the other anonymous browser, nor for a third one.
    assert await listed(second) == []
    assert (await second.get(f"{LIST}/{cid}")).status_code == 404
    third = await demo.anonymous()
    assert await listed(third) == []
    for client in (first, second, third, elsewhere, agent):
        await client.aclose()


async def test_only_the_browsers_own_conversations_are_linked(demo):
    mine, theirs = await demo.anonymous(), await demo.anonymous()
    own = (await start(mine, subject="Mine"))["id"]
    other = (await start(theirs, subject="Theirs"))["id"]
    await sso_in(mine, demo, "only.mine@example.com")
    await wait_listed(mine, own)
    await asyncio.sleep(0.5)  # time for anything else to (wrongly) arrive
    assert await listed(mine) == [own]
    assert await listed(theirs) == [other]
    assert await reporter_changes(demo, other) == []
    for client in (mine, theirs):
        await client.aclose()


async def test_sso_again_links_nothing_more(demo):
    browser = await demo.anonymous()
    cid = (await start(browser))["id"]
    await sso_in(browser, demo, "twice@example.com")
    await wait_listed(browser, cid)
    await sso_in(browser, demo, "twice@example.com")  # now replaces an SSO session: nothing to link
    await sso_in(browser, demo, "someone.else@example.com")
    await asyncio.sleep(1.0)
    assert await listed(browser) == []  # someone.else has no conversations
    twice = await demo.customer("twice@example.com")
    assert await listed(twice) == [cid]
    assert len(await reporter_changes(demo, cid)) == 1
    for client in (browser, twice):
        await client.aclose()


async def test_sso_after_unverified_email_links_only_what_that_browser_created(demo):
    # The e-mail's owner already has a conversation, from another browser.
    owner = await demo.customer("una@example.com")
    owners = (await start(owner, subject="Owner's own", body="Private details"))["id"]

    browser = demo.browser()
    started = await browser.post("/api/v1/portals/demo/session/email", json={"email": "una@example.com"})
    assert started.status_code == 202, started.text
    session = (await browser.get("/api/v1/session")).json()
    assert session["method"] == "email_unverified"
    unverified_user = session["user_id"]

    # Typing an address does not show that address's conversations.
    assert await listed(browser) == []
    refused = await browser.get(f"{LIST}/{owners}")
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"
    assert (await browser.post(f"{LIST}/{owners}/messages", json={"body": "peek"})).status_code == 404
    created = (await start(browser, subject="From the unverified browser", body="Question"))["id"]
    assert await listed(browser) == [created]
    detail = (await browser.get(f"{LIST}/{created}")).json()["conversation"]
    assert "Private details" not in str(detail)

    signed_in = await sso_in(browser, demo, "una.sso@example.com", "Una Sso")
    await wait_listed(browser, created)
    assert owners not in await listed(browser)
    assert (await browser.get(f"{LIST}/{owners}")).status_code == 404

    agent = await demo.staff("agent@example.com", "agent")
    seen = (await agent.get(f"/api/v1/agent/conversations/{created}")).json()
    assert seen["conversation"]["customer_id"] == signed_in["user_id"]
    # The typed address stays on the record, but its owner never used that browser: they do not see it.
    assert {(p["user_id"], p["role"]) for p in seen["participants"]} == {
        (signed_in["user_id"], "reporter"), (unverified_user, "former")}
    assert created not in await listed(owner)
    assert (await owner.get(f"{LIST}/{created}")).status_code == 404
    events = await reporter_changes(demo, created)
    assert [(e.data["from_customer_id"], e.data["to_customer_id"]) for e in events] == [
        (unverified_user, signed_in["user_id"])]
    # The owner's own conversation did not move.
    untouched = (await agent.get(f"/api/v1/agent/conversations/{owners}")).json()
    assert untouched["conversation"]["customer_id"] == unverified_user  # the same account: una@example.com
    assert await reporter_changes(demo, owners) == []
    assert owners in await listed(owner)
    for client in (owner, browser, agent):
        await client.aclose()


async def test_sso_as_the_same_email_after_unverified_keeps_everything(demo):
    browser = demo.browser()
    await browser.post("/api/v1/portals/demo/session/email", json={"email": "same@example.com"})
    created = (await start(browser, subject="Before signing in"))["id"]
    signed_in = await sso_in(browser, demo, "same@example.com")
    # The same account: it is theirs at once, and the link changes no reporter.
    assert await listed(browser) == [created]
    later = (await start(browser, subject="After signing in"))["id"]
    assert set(await listed(browser)) == {created, later}

    async def linked() -> bool:
        return any(e.data["to_user_id"] == signed_in["user_id"]
                   for e in await stream_events(demo.settings.nats_url, IdentityLinked.subject()))

    await wait_until(linked)
    await asyncio.sleep(0.3)  # conversations applies it
    assert await reporter_changes(demo, created) == []
    await browser.aclose()


async def test_a_brand_new_sso_customer_can_write_at_once(demo):
    """Delayed user creation: the first SSO login creates the account and publishes UserRegistered;
    the conversation is started right away, whether or not conversations has applied it yet."""
    settings = demo.settings
    conv_db, auth_db = settings.database_url("conversations"), settings.database_url("auth")
    people = [(f"fresh{i}@example.com", f"Fresh Person {i}") for i in range(5)]

    async def first_login_and_write(email: str, name: str) -> tuple[str, dict]:
        browser = demo.browser()
        user = await sso_in(browser, demo, email, name)
        # The same first login retried at once (a double click, a widget reload) is the same account.
        again = await sso_in(browser, demo, email, name)
        assert again["user_id"] == user["user_id"]
        conversation = await start(browser, subject=f"Hello from {name}", body="My first question")
        posted = await browser.post(f"{LIST}/{conversation['id']}/messages", json={"body": "And a second one"})
        assert posted.status_code == 201, posted.text
        await browser.aclose()
        return user["user_id"], conversation

    results = await asyncio.gather(*(first_login_and_write(email, name) for email, name in people))

    for (email, name), (user_id, conversation) in zip(people, results, strict=True):
        assert count(auth_db, "users", "email = :e", e=email) == 1
        assert rows(conv_db, "SELECT customer_id, channel, subject FROM conversations WHERE id = :c",
                    c=conversation["id"]) == [(user_id, "portal", f"Hello from {name}")]
        assert [r[0] for r in rows(conv_db, "SELECT body FROM messages WHERE conversation_id = :c "
                                            "AND kind = 'message' ORDER BY seq", c=conversation["id"])] == [
            "My first question", "And a second one"]
        # Whatever order the event and the request came in, the copy ends with the token's name.
        await wait_until(lambda e=email, n=name: rows(
            conv_db, "SELECT display_name, email FROM customers WHERE email = :e", e=e) == [(n, e)])
        assert rows(conv_db, "SELECT id, version FROM customers WHERE email = :e", e=email) == [(user_id, 1)]

    registered = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
                  if e.data["email"] in dict(people)]
    assert sorted(e.data["email"] for e in registered) == sorted(dict(people))
    assert {e.data["display_name"] for e in registered} == set(dict(people).values())

    # Agents see them with their e-mail, and the customer finds them after signing in again.
    agent = await demo.staff("agent@example.com", "agent")
    inbox = {c["id"]: c["customer_email"] for c in
             (await agent.get("/api/v1/agent/conversations")).json()["conversations"]}
    assert {inbox[conversation["id"]] for _, conversation in results} == set(dict(people))
    again = await demo.customer(people[0][0])
    assert await listed(again) == [results[0][1]["id"]]
    for client in (agent, again):
        await client.aclose()


async def test_writing_before_conversations_heard_of_the_customer_loses_nothing(settings, start_service, gateway):
    """The same, made certain: auth's relay is held back, so UserRegistered reaches conversations only
    after the customer has started a conversation and written in it."""
    from services.auth.app import build as build_auth
    from services.conversations.app import build as build_conversations

    auth = await start_service(build_auth, settings, relay_enabled=False)
    await start_service(build_conversations, settings)
    demo = await make_demo(settings, gateway)
    conv_db, auth_db = settings.database_url("conversations"), settings.database_url("auth")

    browser = demo.browser()
    user = await sso_in(browser, demo, "held@example.com", "Held Back")
    assert (await sso_in(browser, demo, "held@example.com", "Held Back"))["user_id"] == user["user_id"]
    assert count(auth_db, "outbox", "published_at IS NULL") > 0  # UserRegistered not sent yet
    conversation = await start(browser, subject="Before the event", body="First words")
    posted = await browser.post(f"{LIST}/{conversation['id']}/messages", json={"body": "Second words"})
    assert posted.status_code == 201, posted.text
    assert await listed(browser) == [conversation["id"]]
    assert rows(conv_db, "SELECT version FROM customers WHERE id = :u", u=user["user_id"]) == [(0,)]

    relay = asyncio.create_task(auth.relay.run())
    try:
        await wait_until(lambda: rows(conv_db, "SELECT display_name, version FROM customers WHERE id = :u",
                                      u=user["user_id"]) == [("Held Back", 1)], timeout=15)
    finally:
        relay.cancel()
    assert count(conv_db, "customers", "email = 'held@example.com'") == 1
    assert [r[0] for r in rows(conv_db, "SELECT body FROM messages WHERE conversation_id = :c AND kind = 'message' "
                                        "ORDER BY seq", c=conversation["id"])] == ["First words", "Second words"]
    detail = (await browser.get(f"{LIST}/{conversation['id']}")).json()["conversation"]
    assert [m["body"] for m in detail["messages"] if m["kind"] == "message"] == ["First words", "Second words"]
    registered = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
                  if e.data["email"] == "held@example.com"]
    assert len(registered) == 1
    await browser.aclose()
    await demo.admin.aclose()


async def test_the_linked_conversations_events_stay_in_order(demo):
    """Consumers order a conversation's events by aggregate_version: ReporterChanged must come after
    what came before it, and what follows must come after it."""
    from contracts.events import ConversationCreated

    browser = await demo.anonymous()
    cid = (await start(browser))["id"]
    assert (await browser.post(f"{LIST}/{cid}/messages", json={"body": "more"})).status_code == 201
    await sso_in(browser, demo, "ordered@example.com")
    await wait_listed(browser, cid)
    assert (await browser.post(f"{LIST}/{cid}/messages", json={"body": "signed in now"})).status_code == 201
    conv_db = demo.settings.database_url("conversations")
    await wait_until(lambda: count(conv_db, "outbox", "published_at IS NULL") == 0)
    events = []
    for kind in (ConversationCreated, MessagePosted, ReporterChanged):
        events += [e for e in await stream_events(demo.settings.nats_url, kind.subject())
                   if e.data["conversation_id"] == cid]
    in_order = sorted(events, key=lambda e: e.aggregate_version)
    assert len({e.aggregate_version for e in events}) == len(events), [(e.type, e.aggregate_version) for e in events]
    assert [e.type for e in in_order] == [
        "ConversationCreated", "MessagePosted", "MessagePosted", "ReporterChanged", "MessagePosted"]
    await browser.aclose()


async def test_anonymous_then_email_access_then_sso_keeps_what_was_written_anonymously(demo):
    """A widget visitor writes anonymously, then types their e-mail (unverified), then the site signs
    them in by SSO: both conversations that browser started must end up with the SSO customer.

    Fails today: starting e-mail access ends the anonymous session without linking it, so the
    anonymous conversation is visible to no customer any more (only agents can still find it)."""
    browser = await demo.anonymous()
    anonymous_user = (await browser.get("/api/v1/session")).json()["user_id"]
    written_anonymously = (await start(browser, subject="Written anonymously"))["id"]
    started = await browser.post("/api/v1/portals/demo/session/email", json={"email": "chain@example.com"})
    assert started.status_code == 202, started.text
    written_unverified = (await start(browser, subject="Written unverified"))["id"]

    signed_in = await sso_in(browser, demo, "chain.sso@example.com")
    await wait_listed(browser, written_unverified)
    await asyncio.sleep(1.0)  # time for every link to be applied
    agent = await demo.staff("agent@example.com", "agent")
    reporter = (await agent.get(f"/api/v1/agent/conversations/{written_anonymously}")).json()["conversation"]
    assert set(await listed(browser)) == {written_anonymously, written_unverified}, (
        f"the anonymous conversation is lost: its reporter is still {reporter['customer_id']} "
        f"(Anonymous user {anonymous_user}), not {signed_in['user_id']}")
    for client in (browser, agent):
        await client.aclose()
