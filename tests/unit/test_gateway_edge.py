"""The gateway's edge middleware on its own: which address is the client's, and which origin is ours."""

import pytest
from pydantic import ValidationError

from services.gateway.edge import CrossSiteGuard, client_address
from services.runtime.settings import Settings


async def seen_client(trusted: list[str], peer: str, forwarded: str | None) -> str:
    seen: dict[str, object] = {}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen["client"] = scope["client"][0]

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 50000),
             "scheme": "http"}
    await client_address(app, trusted)(scope, None, None)  # type: ignore[arg-type]
    return str(seen["client"])


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy():
    assert await seen_client([], "127.0.0.1", "203.0.113.9") == "127.0.0.1"
    assert await seen_client(["10.0.0.0/8"], "192.0.2.1", "203.0.113.9") == "192.0.2.1"


async def test_the_client_is_the_right_most_untrusted_forwarded_address():
    trusted = ["127.0.0.1", "10.0.0.0/8"]
    # The client made up the first entry; the edge proxy (10.1.2.3) appended what it saw.
    assert await seen_client(trusted, "127.0.0.1", "198.51.100.7, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert await seen_client(trusted, "10.9.9.9", "203.0.113.9") == "203.0.113.9"
    assert await seen_client(trusted, "127.0.0.1", None) == "127.0.0.1"


def test_trusted_proxies_setting_is_a_list_of_ips_and_cidrs(monkeypatch):
    assert Settings().trusted_proxy_list == []
    monkeypatch.setenv("PORTICO_TRUSTED_PROXIES", " 10.0.0.0/8, 127.0.0.1 ,::1")
    assert Settings().trusted_proxy_list == ["10.0.0.0/8", "127.0.0.1", "::1"]
    monkeypatch.setenv("PORTICO_TRUSTED_PROXIES", "10.0.0.0/8,proxy.example")
    with pytest.raises(ValidationError, match="PORTICO_TRUSTED_PROXIES"):
        Settings()


async def answer(guard: CrossSiteGuard, method: str, headers: dict[str, str], host: str = "help.example.com",
                 scheme: str = "https") -> int:
    sent: list[dict] = []

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await guard({"type": "http", "method": method, "path": "/x", "headers": raw, "scheme": scheme}, None, send)  # type: ignore[arg-type]
    return int(sent[0]["status"])


@pytest.mark.parametrize(("method", "headers", "status"), [
    ("POST", {"Origin": "https://help.example.com"}, 200),
    ("POST", {"Origin": "https://HELP.example.com:443"}, 200),            # default port, any case
    ("POST", {"Origin": "https://portal.example.org"}, 200),              # PORTICO_PUBLIC_URL
    ("POST", {"Origin": "http://help.example.com"}, 403),                 # another scheme is another origin
    ("POST", {"Origin": "https://help.example.com.evil.example"}, 403),
    ("PATCH", {"Origin": "https://evil.example"}, 403),
    ("DELETE", {"Origin": "null"}, 403),
    ("POST", {"Sec-Fetch-Site": "cross-site"}, 403),
    ("POST", {"Sec-Fetch-Site": "same-site"}, 403),
    ("POST", {"Sec-Fetch-Site": "same-origin"}, 200),
    ("POST", {"Sec-Fetch-Site": "none"}, 200),
    ("POST", {}, 200),
    ("POST", {"Origin": "https://evil.example", "Authorization": "Bearer pk_x"}, 200),
    ("GET", {"Origin": "https://evil.example"}, 200),
    ("OPTIONS", {"Origin": "https://evil.example"}, 200),
])
async def test_only_same_origin_writes_pass_the_cross_site_guard(method, headers, status):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})

    guard = CrossSiteGuard(app, public_url="https://portal.example.org/")
    assert await answer(guard, method, headers) == status


def test_the_way_back_after_sign_in_stays_on_the_portal_or_console_even_through_dots() -> None:
    from services.gateway.web.console.staff import safe_staff_next
    from services.gateway.web.pages import safe_next

    assert safe_next("demo", "/portals/demo/conversations/01X?q=a..b") == "/portals/demo/conversations/01X?q=a..b"
    for away in ("/portals/demo/../../agent/", "/portals/demo/%2e%2e/other/", "/portals/demo/./../x",
                 "//evil.example", "/portals/other/", "https://evil.example/portals/demo/"):
        assert safe_next("demo", away) == "/portals/demo/", away
    assert safe_staff_next("/admin/staff") == "/admin/staff"
    for away in ("/agent/../portals/demo/", "/admin/%2E%2E/portals/x/", "//evil.example/agent/"):
        assert safe_staff_next(away) == "/agent/", away
