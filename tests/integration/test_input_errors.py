"""Whatever a client sends, a parser's failure on it is the client's error: a 4xx with a named code, and
nothing stored changes. Cursors that no page handed out, times out of range or without their offset, text
with NUL characters or unpaired surrogates (which PostgreSQL cannot store), numbers past Python's 4,300-digit
limit, and JSON nested past the parser's depth; on SQLite and PostgreSQL alike."""

import base64
import json

import httpx
import pytest

from tests.kit.conversations import Demo, make_demo, start

BIG = "1" * 4301


def cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


async def snapshot(demo: Demo, customer: httpx.AsyncClient) -> dict[str, object]:
    """What the refused requests could have changed, as the API shows it."""
    return {path: (await client.get(path)).json() for client, path in (
        (demo.admin, "/api/v1/admin/api-keys"), (demo.admin, "/api/v1/admin/portals/demo/kb/articles"),
        (demo.admin, "/api/v1/admin/portals/demo/theme"), (demo.admin, "/api/v1/agent/conversations"),
        (customer, "/api/v1/portals/demo/conversations"))}


async def test_bad_input_gets_a_client_error_with_a_code_and_changes_nothing(demo: Demo) -> None:
    ana = await demo.customer("ana@example.com")
    cid = (await start(ana))["id"]
    agent, mine, kb = "/api/v1/agent/conversations", "/api/v1/portals/demo/conversations", \
        "/api/v1/portals/demo/kb/articles"
    json_body = {"content-type": "application/json"}
    cases: list[tuple[str, httpx.AsyncClient, str, str, dict, str]] = [
        # (what, who, method, path, request, expected code)
        ("CSS with a 4,301-digit number", demo.admin, "PUT", "/api/v1/admin/portals/demo/theme/draft",
         {"json": {"name": "t", "views": {"home": {"custom_css": f"a {{ width: {BIG}px }}"}}}}, "invalid_setting"),
        ("a 4,301-digit number in JSON", demo.admin, "PUT", "/api/v1/admin/portals/demo/theme/draft",
         {"content": '{"name": "t", "version": ' + BIG + ', "views": {}}', "headers": json_body}, "invalid_request"),
        ("JSON nested past the parser's depth", demo.admin, "PUT", "/api/v1/admin/portals/demo/theme/draft",
         {"content": "[" * 100_000, "headers": json_body}, "invalid_request"),
        ("a message of JSON nested past the parser's depth", ana, "POST", f"{mine}/{cid}/messages",
         {"content": "[" * 100_000, "headers": json_body}, "invalid_request"),
        ("a knowledge-base cursor past any offset", ana, "GET", f"{kb}?cursor=" +
         base64.urlsafe_b64encode(b"9" * 140).decode(), {}, "invalid_request"),
        ("a cursor time without its offset", ana, "GET", f"{mine}?cursor=" + cursor(["2020-01-01T00:00:00", "x"]),
         {}, "invalid_request"),
        ("a cursor time past year 9999 in UTC", ana, "GET", f"{mine}?cursor=" +
         cursor(["9999-12-31T23:59:59-14:00", "x"]), {}, "invalid_request"),
        ("a cursor time before year 1 in UTC", demo.admin, "GET", f"{agent}?cursor=" +
         cursor(["0001-01-01T00:00:00+14:00", "x"]), {}, "invalid_request"),
        ("a cursor id with an unpaired surrogate", ana, "GET", f"{mine}?cursor=" +
         cursor(["2020-01-01T00:00:00+00:00", "\ud800"]), {}, "invalid_request"),
        ("a cursor id with NUL", demo.admin, "GET", f"{agent}?cursor=" +
         cursor(["2020-01-01T00:00:00+00:00", "x\u0000"]), {}, "invalid_request"),
        ("a cursor that is not JSON", ana, "GET", f"{mine}?cursor=bm90IGpzb24", {}, "invalid_request"),
        ("NUL in a search", ana, "GET", f"{mine}?q=%00", {}, "invalid_request"),
        ("NUL in a knowledge-base search", ana, "GET", f"{kb}?q=a%00b", {}, "invalid_request"),
        ("NUL in a path", ana, "GET", f"{kb}/a%00b", {}, "invalid_request"),
        ("NUL in a conversation id", ana, "GET", f"{mine}/%00", {}, "invalid_request"),
        ("NUL in a subject", ana, "POST", mine, {"json": {"subject": "a\u0000b", "body": "Hello"}},
         "invalid_request"),
        ("NUL in an article", demo.admin, "POST", "/api/v1/admin/portals/demo/kb/articles",
         {"json": {"title": "a\u0000b", "body": "x"}}, "invalid_request"),
        ("an unpaired surrogate in an article", demo.admin, "POST", "/api/v1/admin/portals/demo/kb/articles",
         {"content": '{"title": "a\\udc00b", "body": "x"}', "headers": json_body}, "invalid_request"),
        ("NUL in an agent's subject", demo.admin, "POST", f"{agent}/{cid}/subject",
         {"json": {"subject": "\u0000"}}, "invalid_request"),
        ("an expiry past year 9999 in UTC", demo.admin, "POST", "/api/v1/admin/api-keys",
         {"json": {"name": "k", "role": "org.admin", "expires_at": "9999-12-31T23:59:59-14:00"}}, "invalid_request"),
        ("an expiry before year 1 in UTC", demo.admin, "POST", "/api/v1/admin/api-keys",
         {"json": {"name": "k", "role": "org.admin", "expires_at": "0001-01-01T00:00:00+14:00"}}, "invalid_request"),
    ]
    before = await snapshot(demo, ana)
    failures = []
    for what, client, method, path, request, code in cases:
        response = await client.request(method, path, **request)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if not (400 <= response.status_code < 500 and body.get("error") == code):
            failures.append(f"{what}: {response.status_code} {response.text[:200]}")
    assert failures == [], "\n".join(failures)
    assert await snapshot(demo, ana) == before
    await ana.aclose()
