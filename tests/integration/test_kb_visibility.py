"""Who reads which knowledge-base article, through the gateway: the visibility matrix (reader × article ×
the portal's three KB switches) for the list, the single article and search; the admin API's roles; and
publish / unpublish / edit / delete taking effect for readers at once, with revisions and events."""

import itertools
from datetime import UTC, datetime

import httpx
import pytest

from contracts.events import ArticlePublished, ArticleUnpublished
from tests.helpers import wait_until
from tests.kit.conversations import Demo, make_demo
from tests.kit.streams import stream_events

ADMIN_ARTICLES = "/api/v1/admin/portals/demo/kb/articles"
SETTINGS = "/api/v1/admin/portals/demo/kb/settings"
READ = "/api/v1/portals/demo/kb/articles"
STAFF_PASSWORD = "a-long-staff-password"

# slug -> (visibility, published); every body carries the word "zebracorn" so one search finds them all.
ARTICLES = {
    "public-published": ("public", True),
    "internal-published": ("internal", True),
    "public-draft": ("public", False),
    "internal-draft": ("internal", False),
}
STAFF_READERS = ("agent", "content_manager", "admin")
SWITCHES = ("portal_for_agents", "internal_kb", "show_only_internal")


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


async def write(demo: Demo, slug: str, visibility: str, published: bool, body: str | None = None,
                client: httpx.AsyncClient | None = None) -> dict:
    response = await (client or demo.admin).post(ADMIN_ARTICLES, json={
        "title": slug.replace("-", " ").title(), "slug": slug, "visibility": visibility, "published": published,
        "body": body or f"The zebracorn article that is {visibility} and {'published' if published else 'a draft'}."})
    assert response.status_code == 201, response.text
    return response.json()["article"]


async def switch(client: httpx.AsyncClient, **values: bool) -> dict:
    response = await client.patch(SETTINGS, json=values)
    assert response.status_code == 200, response.text
    return response.json()


def other_org_staff(settings, email: str, role: str) -> None:  # type: ignore[no-untyped-def]
    """A second org with one staff member. The API cannot create an org, so this seeds auth's database
    directly, as `make run` seeds the demo org."""
    from argon2 import PasswordHasher

    from contracts.envelope import new_id
    from services.auth.accounts import get_or_create_user
    from services.auth.models import Org
    from services.runtime.db import make_engine, session_scope

    engine = make_engine(settings.database_url("auth"))
    with session_scope(engine) as session:
        org = Org(id=new_id(), slug=f"other-{new_id().lower()[-6:]}", name="Other org", created_at=datetime.now(UTC))
        session.add(org)
        session.flush()
        get_or_create_user(session, org_id=org.id, email=email, kind="staff", method="seed", role=role,
                           display_name="Other staff", password_hash=PasswordHasher().hash(STAFF_PASSWORD))
    engine.dispose()


async def sign_in_staff(demo: Demo, email: str) -> httpx.AsyncClient:
    browser = demo.browser()
    response = await browser.post("/api/v1/staff/session", json={"email": email, "password": STAFF_PASSWORD})
    assert response.status_code == 200, response.text
    return browser


def visible(reader: str, portal_for_agents: bool, internal_kb: bool, show_only_internal: bool) -> set[str]:
    """The rule of the issue: the public sees published public articles; staff of the portal's org also see
    internal ones when both 'for agents and admins' and 'internal KB' are on, only those with 'show only
    internal'; nobody reads a draft through the reader API."""
    kinds = {"public"}
    if reader in STAFF_READERS and portal_for_agents and internal_kb:
        kinds = {"internal"} if show_only_internal else {"public", "internal"}
    return {slug for slug, (kind, published) in ARTICLES.items() if published and kind in kinds}


async def readers(demo: Demo, settings) -> dict[str, httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    found = {"visitor": demo.browser(),  # no session at all
             "anonymous": await demo.anonymous(),
             "customer": await demo.customer("carla@example.com")}
    for role in STAFF_READERS:
        found[role] = await demo.staff(f"{role}@demo.example.com", role)
    other_org_staff(settings, "admin@other.example.com", "admin")
    found["other_org_admin"] = await sign_in_staff(demo, "admin@other.example.com")
    return found


async def test_visibility_matrix_for_list_single_article_and_search(demo, settings):
    for slug, (kind, published) in ARTICLES.items():
        await write(demo, slug, kind, published)
    clients = await readers(demo, settings)
    missing = await clients["visitor"].get(f"{READ}/no-such-article")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"

    failures = []
    for values in itertools.product((False, True), repeat=3):
        flags = dict(zip(SWITCHES, values, strict=True))
        assert {k: v for k, v in (await switch(demo.admin, **flags)).items() if k in SWITCHES} == flags
        for name, client in clients.items():
            expected = visible(name, **flags)
            listed = await client.get(READ)
            assert listed.status_code == 200, listed.text
            if {a["slug"] for a in listed.json()["articles"]} != expected:
                failures.append((flags, name, "list", sorted(a["slug"] for a in listed.json()["articles"])))
            found = await client.get(READ, params={"q": "zebracorn"})
            assert found.status_code == 200, found.text
            if {a["slug"] for a in found.json()["articles"]} != expected:
                failures.append((flags, name, "search", sorted(a["slug"] for a in found.json()["articles"])))
            for slug in ARTICLES:
                one = await client.get(f"{READ}/{slug}")
                if slug in expected:
                    ok = one.status_code == 200 and one.json()["article"]["slug"] == slug
                else:  # hidden answers exactly as missing does
                    ok = one.status_code == 404 and one.content == missing.content \
                        and one.headers["content-type"] == missing.headers["content-type"]
                if not ok:
                    failures.append((flags, name, slug, one.status_code, one.text[:80]))
    assert failures == [], "\n".join(map(str, failures))
    for client in clients.values():
        await client.aclose()


async def test_staff_of_another_org_read_as_the_public_even_with_every_switch_on(demo, settings):
    await write(demo, "internal-published", "internal", True)
    await write(demo, "public-published", "public", True)
    await switch(demo.admin, portal_for_agents=True, internal_kb=True, show_only_internal=False)
    for role in STAFF_READERS:
        other_org_staff(settings, f"{role}@elsewhere.example.com", role)
        outsider = await sign_in_staff(demo, f"{role}@elsewhere.example.com")
        assert {a["slug"] for a in (await outsider.get(READ)).json()["articles"]} == {"public-published"}
        assert (await outsider.get(f"{READ}/internal-published")).status_code == 404
        # nor can they touch the demo portal's admin API
        assert (await outsider.get(ADMIN_ARTICLES)).status_code == 404
        await outsider.aclose()


async def test_search_suggestions_never_reveal_words_of_hidden_articles(demo):
    """A typo is corrected to a word some article contains; for a reader who may not see that article the
    correction itself discloses internal text ("goodwil" -> "goodwill")."""
    await write(demo, "goodwill-credit", "internal", True,
                body="Agents may grant a goodwill credit of up to 20 EUR without approval.")
    await write(demo, "draft-secret", "public", False, body="The acquisition of Globex closes in March.")
    await write(demo, "public-help", "public", True, body="Invoices are under Billing.")
    await switch(demo.admin, portal_for_agents=True, internal_kb=True, show_only_internal=False)
    agent = await demo.staff("agent@demo.example.com", "agent")
    staff_view = (await agent.get(READ, params={"q": "goodwil"})).json()
    assert staff_view["corrected_query"] == "goodwill" and staff_view["articles"][0]["slug"] == "goodwill-credit"

    visitor = demo.browser()
    draft = (await visitor.get(READ, params={"q": "acquisiton"})).json()  # drafts are not in the vocabulary
    assert draft == {"articles": [], "next_cursor": None, "corrected_query": None}
    internal = (await visitor.get(READ, params={"q": "goodwil"})).json()
    assert internal["articles"] == []
    assert internal["corrected_query"] is None, (
        f"the public search corrected 'goodwil' to {internal['corrected_query']!r}, a word only an internal "
        "article contains")
    await visitor.aclose()
    await agent.aclose()


async def test_admin_api_is_for_admins_and_content_managers(demo):
    await write(demo, "public-published", "public", True)
    await write(demo, "internal-draft", "internal", False)
    admin = await demo.staff("admin@demo.example.com", "admin")
    editor = await demo.staff("editor@demo.example.com", "content_manager")
    agent = await demo.staff("agent@demo.example.com", "agent")
    customer = await demo.customer("carla@example.com")
    visitor = demo.browser()

    for client in (demo.admin, admin, editor):
        listed = await client.get(ADMIN_ARTICLES)
        assert listed.status_code == 200, listed.text
        assert {(a["slug"], a["status"]) for a in listed.json()["articles"]} == {
            ("public-published", "published"), ("internal-draft", "draft")}
        draft = await client.get(f"{ADMIN_ARTICLES}/internal-draft")
        assert draft.status_code == 200 and draft.json()["article"]["body"].startswith("The zebracorn")

    created = await write(demo, "by-the-editor", "public", False, client=editor)
    assert created["status"] == "draft"
    assert (await editor.post(f"{ADMIN_ARTICLES}/by-the-editor/publish")).status_code == 200
    assert (await visitor.get(f"{READ}/by-the-editor")).status_code == 200

    for client in (agent, customer):
        for method, path, body in (
                ("GET", ADMIN_ARTICLES, None),
                ("GET", f"{ADMIN_ARTICLES}/internal-draft", None),
                ("POST", ADMIN_ARTICLES, {"title": "Nope", "body": "no"}),
                ("PATCH", f"{ADMIN_ARTICLES}/public-published", {"body": "changed"}),
                ("POST", f"{ADMIN_ARTICLES}/internal-draft/publish", None),
                ("POST", f"{ADMIN_ARTICLES}/public-published/unpublish", None),
                ("DELETE", f"{ADMIN_ARTICLES}/public-published", None),
                ("GET", f"{ADMIN_ARTICLES}/public-published/revisions", None),
                ("PATCH", SETTINGS, {"internal_kb": True})):
            response = await client.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.status_code, response.text)
            assert response.json()["error"] == "forbidden"
    no_session = await visitor.get(ADMIN_ARTICLES)
    assert no_session.status_code == 401 and no_session.json()["error"] == "unauthorized"

    # Only admins flip the portal's switches; content managers edit articles only.
    refused = await editor.patch(SETTINGS, json={"internal_kb": True})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert (await switch(admin, internal_kb=True))["internal_kb"] is True
    # Nothing the refused callers tried changed anything.
    after = (await demo.admin.get(ADMIN_ARTICLES)).json()["articles"]
    assert {(a["slug"], a["status"], a["version"]) for a in after} == {
        ("public-published", "published", 1), ("internal-draft", "draft", 1), ("by-the-editor", "published", 1)}
    for client in (admin, editor, agent, customer, visitor):
        await client.aclose()


async def published_events(settings, slug: str) -> list:  # type: ignore[no-untyped-def]
    return [e for e in await stream_events(settings.nats_url, ArticlePublished.subject()) if e.data["slug"] == slug]


async def unpublished_events(settings, slug: str) -> list:  # type: ignore[no-untyped-def]
    return [e for e in await stream_events(settings.nats_url, ArticleUnpublished.subject())
            if e.data["slug"] == slug]


async def test_publish_edit_unpublish_delete_take_effect_at_once_with_revisions_and_events(demo, settings):
    await switch(demo.admin, portal_for_agents=True, internal_kb=True, show_only_internal=False)
    visitor, agent = demo.browser(), await demo.staff("agent@demo.example.com", "agent")
    one = f"{READ}/shipping-times"

    async def seen(client: httpx.AsyncClient) -> dict | None:
        response = await client.get(one)
        if response.status_code == 404:
            assert response.json() == {"error": "not_found", "message": "No such article."}
            return None
        assert response.status_code == 200, response.text
        listed = {a["slug"] for a in (await client.get(READ)).json()["articles"]}
        assert "shipping-times" in listed
        return response.json()["article"]

    async def searched(client: httpx.AsyncClient, word: str) -> set[str]:
        return {a["slug"] for a in (await client.get(READ, params={"q": word})).json()["articles"]}

    async def revisions() -> list[dict]:
        response = await demo.admin.get(f"{ADMIN_ARTICLES}/shipping-times/revisions")
        assert response.status_code == 200, response.text
        return response.json()["revisions"]

    created = await write(demo, "shipping-times", "public", False, body="Parcels arrive in **three** days.")
    assert created["status"] == "draft" and created["published_at"] is None
    assert await seen(visitor) is None and await seen(agent) is None
    assert len(await revisions()) == 1

    published = await demo.admin.post(f"{ADMIN_ARTICLES}/shipping-times/publish")
    assert published.status_code == 200 and published.json()["article"]["status"] == "published"
    assert "<strong>three</strong>" in (await seen(visitor))["body_html"]  # type: ignore[index]
    assert await searched(visitor, "parcels") == {"shipping-times"}
    again = await demo.admin.post(f"{ADMIN_ARTICLES}/shipping-times/publish")  # idempotent: no second event
    assert again.status_code == 200

    edited = await demo.admin.patch(f"{ADMIN_ARTICLES}/shipping-times",
                                    json={"title": "Delivery times", "body": "Couriers deliver in *two* days."})
    assert edited.status_code == 200, edited.text
    assert edited.json()["article"]["version"] == 2 and edited.json()["article"]["slug"] == "shipping-times"
    article = await seen(visitor)
    assert article is not None and article["title"] == "Delivery times" and "<em>two</em>" in article["body_html"]
    assert await searched(visitor, "couriers") == {"shipping-times"}
    assert await searched(visitor, "parcels") == set()
    history = await revisions()
    assert [r["version"] for r in history] == [1, 2]
    assert history[0]["body"] == "Parcels arrive in **three** days." and history[1]["title"] == "Delivery times"

    made_internal = await demo.admin.patch(f"{ADMIN_ARTICLES}/shipping-times", json={"visibility": "internal"})
    assert made_internal.status_code == 200
    assert await seen(visitor) is None and await seen(agent) is not None
    assert await searched(visitor, "couriers") == set() and await searched(agent, "couriers") == {"shipping-times"}
    await demo.admin.patch(f"{ADMIN_ARTICLES}/shipping-times", json={"visibility": "public"})
    assert [r["version"] for r in await revisions()] == [1, 2, 3, 4]
    assert [r["visibility"] for r in await revisions()] == ["public", "public", "internal", "public"]

    unpublished = await demo.admin.post(f"{ADMIN_ARTICLES}/shipping-times/unpublish")
    assert unpublished.status_code == 200 and unpublished.json()["article"]["status"] == "draft"
    assert await seen(visitor) is None and await seen(agent) is None
    assert await searched(visitor, "couriers") == set() and await searched(agent, "couriers") == set()
    draft_edit = await demo.admin.patch(f"{ADMIN_ARTICLES}/shipping-times", json={"body": "Still a draft."})
    assert draft_edit.status_code == 200 and await seen(visitor) is None
    assert len(await revisions()) == 5

    await demo.admin.post(f"{ADMIN_ARTICLES}/shipping-times/publish")
    assert "Still a draft." in (await seen(visitor))["body_html"]  # type: ignore[index]
    deleted = await demo.admin.delete(f"{ADMIN_ARTICLES}/shipping-times")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert await seen(visitor) is None and await seen(agent) is None
    assert await searched(visitor, "still") == set()
    gone = await demo.admin.get(f"{ADMIN_ARTICLES}/shipping-times")
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert (await demo.admin.get(f"{ADMIN_ARTICLES}/shipping-times/revisions")).status_code == 404

    # Events: published on publish and on each edit of a published article (not on a draft edit, not on a
    # repeated publish); unpublished on unpublish and on delete of a published article.
    async def all_events() -> bool:
        return len(await published_events(settings, "shipping-times")) >= 5 \
            and len(await unpublished_events(settings, "shipping-times")) >= 2
    await wait_until(all_events, timeout=15)
    ups = await published_events(settings, "shipping-times")
    downs = await unpublished_events(settings, "shipping-times")
    article_id = ups[0].aggregate_id
    assert all(e.aggregate_id == article_id and e.type == "ArticlePublished" for e in ups)
    assert [(e.data["title"], e.data["visibility"], e.data["revision"]) for e in ups] == [
        ("Shipping Times", "public", 1), ("Delivery times", "public", 2), ("Delivery times", "internal", 3),
        ("Delivery times", "public", 4), ("Delivery times", "public", 5)]
    assert [e.data["reason"] for e in downs] == ["unpublished", "deleted"]
    assert all(e.aggregate_id == article_id and e.data["portal"] == "demo" for e in downs)
    await visitor.aclose()
    await agent.aclose()


async def test_categories_name_only_what_the_reader_may_see(demo):
    """`GET .../kb/categories` lists a category only where the reader may see one of its published articles,
    with how many: an internal-only or draft-only category is not hinted at."""
    for slug, category, visibility, published in (
            ("invoice-copy", "billing", "public", True), ("refund-times", "billing", "public", True),
            ("goodwill", "billing", "internal", True), ("escalations", "playbooks", "internal", True),
            ("launch-faq", "launch", "public", False), ("uncategorised", None, "public", True)):
        response = await demo.admin.post(ADMIN_ARTICLES, json={
            "title": slug.replace("-", " ").title(), "slug": slug, "body": "Text.", "category": category,
            "visibility": visibility, "published": published})
        assert response.status_code == 201, response.text
    await switch(demo.admin, portal_for_agents=True, internal_kb=True, show_only_internal=False)
    agent = await demo.staff("agent@demo.example.com", "agent")
    visitor = demo.browser()
    shelves = "/api/v1/portals/demo/kb/categories"

    def listed(response: httpx.Response) -> list[tuple[str, str, int]]:
        assert response.status_code == 200, response.text
        return [(c["slug"], c["name"], c["articles"]) for c in response.json()["categories"]]

    assert listed(await visitor.get(shelves)) == [("billing", "Billing", 2)]
    assert listed(await agent.get(shelves)) == [("billing", "Billing", 3), ("playbooks", "Playbooks", 1)]
    await switch(demo.admin, show_only_internal=True)
    assert listed(await agent.get(shelves)) == [("billing", "Billing", 1), ("playbooks", "Playbooks", 1)]
    assert listed(await visitor.get(shelves)) == [("billing", "Billing", 2)]
    assert (await visitor.get("/api/v1/portals/nope/kb/categories")).status_code == 404
    await visitor.aclose()
    await agent.aclose()
