"""The HTTP edge as a browser, an attacker's page, a proxy and an operator meet it: cross-site writes,
forwarded addresses, a NATS outage, readiness per database, API docs offline, and clear errors for
wrong paths and bodies. Real gateway on uvicorn, real NATS, real databases."""

import re

import httpx
import pytest

from tests.helpers import count, wait_for_http
from tests.kit.conversations import make_demo, start

EVIL = {"Origin": "https://evil.example"}
CSV = ("numbers.csv", b"a,b\n1,2\n", "text/csv")


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


async def messages_of(browser: httpx.AsyncClient, conversation_id: str) -> list[str]:
    detail = await browser.get(f"/api/v1/portals/demo/conversations/{conversation_id}")
    assert detail.status_code == 200, detail.text
    return [m["body"] for m in detail.json()["conversation"]["messages"] if m["kind"] == "message"]


def refused_as_cross_site(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "cross_site_request" and response.json()["message"]


# -- 2. cross-site request protection ------------------------------------------------------------

async def test_a_page_on_another_site_changes_nothing_with_the_customers_cookie(demo, settings):
    ana = await demo.customer("ana@example.com")
    conversation = await start(ana)
    conv_db = settings.database_url("conversations")
    conversations_before = count(conv_db, "conversations")
    base = "/api/v1/portals/demo/conversations"

    refused_as_cross_site(await ana.post(base, data={"subject": "From evil", "body": "Hi"}, files={"files": CSV},
                                         headers=EVIL))
    refused_as_cross_site(await ana.post(f"{base}/{conversation['id']}/messages", json={"body": "From evil"},
                                         headers=EVIL))
    refused_as_cross_site(await ana.post(f"{base}/{conversation['id']}/reopen", headers=EVIL))
    refused_as_cross_site(await ana.post(f"{base}/{conversation['id']}/messages", json={"body": "From evil"},
                                         headers={"Sec-Fetch-Site": "cross-site"}))
    refused_as_cross_site(await ana.post(f"{base}/{conversation['id']}/messages", json={"body": "From evil"},
                                         headers={"Sec-Fetch-Site": "same-site"}))
    refused_as_cross_site(await ana.post(f"{base}/{conversation['id']}/messages", json={"body": "From evil"},
                                         headers={"Origin": "null"}))
    refused_as_cross_site(await ana.delete("/api/v1/session", headers=EVIL))
    # Login CSRF: the other site cannot sign this browser in to another session.
    refused_as_cross_site(await ana.post("/api/v1/portals/demo/session/anonymous", headers=EVIL))
    refused_as_cross_site(await ana.post("/api/v1/staff/session", headers=EVIL,
                                         json={"email": "admin@example.com", "password": "a-long-admin-password"}))

    who = await ana.get("/api/v1/session", headers=EVIL)  # reading is not refused
    assert who.status_code == 200 and who.json()["email"] == "ana@example.com" and who.json()["kind"] == "customer"
    assert count(conv_db, "conversations") == conversations_before
    assert await messages_of(ana, conversation["id"]) == ["Hello, invoice 42 ..."]


async def test_same_origin_pages_servers_and_api_keys_still_write(demo, settings, gateway):
    ana = await demo.customer("ana@example.com")
    conversation = await start(ana)
    url = f"/api/v1/portals/demo/conversations/{conversation['id']}/messages"
    same_origin = [
        {"Origin": gateway.base_url},                                     # the Host the request came to
        {"Origin": settings.resolved_public_url},                         # PORTICO_PUBLIC_URL
        {"Origin": gateway.base_url, "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},                                       # typed into the address bar
        {},                                                               # curl, a server
    ]
    for number, headers in enumerate(same_origin):
        posted = await ana.post(url, json={"body": f"Message {number}"}, headers=headers)
        assert posted.status_code == 201, (headers, posted.text)
    # An API key in the Authorization header is not a cookie a browser sends by itself.
    answer = await demo.admin.post(f"/api/v1/agent/conversations/{conversation['id']}/messages",
                                   json={"body": "Answer"}, headers=EVIL)
    assert answer.status_code == 201, answer.text
    assert (await messages_of(ana, conversation["id"]))[1:] == [f"Message {n}" for n in range(6)] + ["Answer"]


# -- 3. client address spoofing -----------------------------------------------------------------

async def test_a_new_forwarded_for_per_request_does_not_escape_the_per_address_limit(demo):
    browser = demo.browser()
    statuses = []
    for number in range(25):
        response = await browser.post("/api/v1/portals/demo/session/email", json={"email": f"c{number}@example.com"},
                                      headers={"X-Forwarded-For": f"198.51.100.{number + 1}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"] == "rate_limited" and response.headers["Retry-After"]
    await browser.aclose()
    assert statuses[0] == 202
    assert 429 in statuses, "every request counted as a new address"


# -- 8. NATS outage ---------------------------------------------------------------------------------

async def test_while_nats_is_down_requests_answer_503_at_once_and_work_again_after(demo, nats_server, gateway):
    ana = await demo.customer("ana@example.com")
    conversation = await start(ana)
    url = f"/api/v1/portals/demo/conversations/{conversation['id']}/messages"

    nats_server.stop()
    health = await wait_for_http(gateway, "/healthz", 503)
    assert health.json()["down"] == ["nats"]
    # A client that gives up after 3 s: the answer must come from the gateway, not from a timeout.
    prompt = httpx.Timeout(3.0)
    for response in (await ana.post(url, json={"body": "During the outage"}, timeout=prompt),
                     await ana.get("/api/v1/portals/demo/conversations", timeout=prompt),
                     await demo.browser().post("/api/v1/portals/demo/session/anonymous", timeout=prompt),
                     await demo.admin.get("/api/v1/agent/conversations", timeout=prompt)):
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "service_unavailable" and response.headers["Retry-After"].isdigit()
    ready = await gateway.client.get("/readyz", timeout=prompt)
    assert ready.status_code == 503 and ready.json()["down"] == ["nats"]
    assert {s["error"] for s in ready.json()["services"].values()} == {"service_unavailable"}

    nats_server.start()
    await wait_for_http(gateway, "/readyz", 200, timeout=30)
    assert (await ana.post(url, json={"body": "After the outage"})).status_code == 201
    assert await messages_of(ana, conversation["id"]) == ["Hello, invoice 42 ...", "After the outage"]


async def test_a_stopped_service_answers_503_with_retry_after(demo, stack):
    ana = await demo.customer("ana@example.com")
    await stack["conversations"].stop()
    response = await ana.get("/api/v1/portals/demo/conversations")
    assert response.status_code == 503 and response.json()["error"] == "service_unavailable"
    assert response.headers["Retry-After"].isdigit()


# -- 15. readiness checks each service's database ------------------------------------------------

async def test_readyz_reports_the_service_whose_database_fails(demo, stack, gateway, databases, tmp_path):
    from services.runtime.db import make_engine

    ready = await wait_for_http(gateway, "/readyz", 200)
    assert {s["database"] for s in ready.json()["services"].values()} == {"ok"}

    kb = stack["kb"]
    working = kb.engine
    broken_url = ("postgresql://postgres@127.0.0.1:1/none" if databases.backend == "postgres"
                  else f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'kb.sqlite3'}")
    kb.engine = make_engine(broken_url)
    try:
        not_ready = await gateway.client.get("/readyz")
    finally:
        kb.engine.dispose()
        kb.engine = working
    assert not_ready.status_code == 503
    body = not_ready.json()
    assert body["down"] == ["kb"]
    assert body["services"]["kb"]["status"] == "degraded" and body["services"]["kb"]["database"] == "error"
    assert all(body["services"][s]["database"] == "ok" for s in ("auth", "conversations", "notifications"))
    await wait_for_http(gateway, "/readyz", 200)


# -- 15. clear errors for a missing portal, a trailing slash, a bad body -------------------------------

async def test_a_session_asking_for_a_portal_that_does_not_exist_gets_unknown_portal(demo):
    ana = await demo.customer("ana@example.com")
    for response in (await ana.get("/api/v1/portals/nope/conversations"),
                     await ana.post("/api/v1/portals/nope/conversations", json={"subject": "S", "body": "B"})):
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "unknown_portal"


async def test_a_trailing_slash_is_a_json_404_not_an_empty_redirect(demo):
    ana = await demo.customer("ana@example.com")
    for method, path in (("GET", "/api/v1/session/"), ("POST", "/api/v1/portals/demo/conversations/"),
                         ("GET", "/readyz/")):
        response = await ana.request(method, path)
        assert response.status_code == 404, (path, response.status_code, response.headers)
        assert response.json()["error"] == "not_found" and response.json()["message"]
    assert (await ana.get("/api/v1/session")).status_code == 200


async def test_validation_messages_name_the_field_path(demo):
    ana = await demo.customer("ana@example.com")
    conversation = await start(ana)
    cases = [
        (ana.post("/api/v1/portals/demo/conversations", json={"subject": "No body"}), "body.body: Field required"),
        (ana.post(f"/api/v1/portals/demo/conversations/{conversation['id']}/messages", json={}),
         "body.body: Field required"),
        (demo.browser().post("/api/v1/staff/session", json={"password": "x"}), "body.email: Field required"),
        (ana.get("/api/v1/portals/demo/conversations", params={"limit": 0}), "query.limit: "),
    ]
    for call, expected in cases:
        response = await call
        assert response.status_code == 422 and response.json()["error"] == "invalid_request", response.text
        assert expected in response.json()["message"], response.json()["message"]
        assert not response.json()["message"].startswith("request:")


# -- 13. API docs without internet ---------------------------------------------------------------------

@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_api_docs_use_only_files_served_here(gateway, page):
    html = await gateway.client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
    urls += re.findall(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html.text)
    assert urls, html.text
    assert "http://" not in html.text and "https://" not in html.text, "an address outside this gateway"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await gateway.client.get(url)
        assert asset.status_code == 200 and asset.content, url


# -- the request id, on every answer --------------------------------------------------------------------

async def test_every_answer_carries_a_request_id(gateway):
    given = await gateway.client.get("/healthz", headers={"X-Request-Id": "req-edge-1"})
    assert given.headers["X-Request-Id"] == "req-edge-1"
    made = await gateway.client.get("/no/such/page", headers={"X-Request-Id": "x" * 65})
    assert made.status_code == 404 and made.headers["X-Request-Id"] not in ("", "x" * 65)
    refused = await gateway.client.post("/api/v1/session/anything", headers=EVIL)
    assert refused.status_code == 403 and refused.headers["X-Request-Id"]
    assert (await gateway.client.get("/healthz")).headers["X-Request-Id"] != made.headers["X-Request-Id"]
