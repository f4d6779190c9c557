"""Sign-in hardening (issue 11): limits on guessed secrets (staff passwords, e-mail codes, API keys),
one account per e-mail however it is spelt, NumericDate claims that are numbers, and open sessions
that follow a portal's shortened lifetime and idle timeout.

Client addresses are set with `X-Forwarded-For` from the test client, which the gateway believes
because 127.0.0.1 is made a trusted proxy here. The limits' clock is moved by the test instead of
waiting for minutes to pass.
"""

import json
import time
import unicodedata
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import nats
import pytest

from contracts import operations
from contracts.sessions import SESSION_COOKIE, SessionRecord, session_key
from tests.conftest import make_settings
from services.runtime.settings import Settings
from tests.helpers import Gateway, count, rows, wait_until
from tests.kit.seeding import EMAIL_PATH, seed
from tests.kit.codes import code_for
from tests.kit.sign_in import ADMIN, SSO, portal_secret, sign

STAFF = "/api/v1/staff/session"
VERIFY = "/api/v1/portals/demo/session/email/verify"
ADMIN_PASSWORD = "a-long-admin-password"


@pytest.fixture
def settings(nats_server, databases, tmp_path):  # type: ignore[no-untyped-def]
    return make_settings(nats_server.url, databases, tmp_path / "var", trusted_proxies="127.0.0.1")


class Clock:
    """The auth limits' clock, frozen and moved on by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    seed(settings)
    clock = Clock()
    stack["auth"].resources["limits"].clock = clock
    secret, _ = await portal_secret(gateway)
    return {"gateway": gateway, "settings": settings, "clock": clock, "secret": secret, "auth": stack["auth"]}


def at(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def staff_sign_in(gw: Gateway, address: str, password: str, email: str = "admin@example.com") -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.base_url) as browser:
        return await browser.post(STAFF, json={"email": email, "password": password}, headers=at(address))


def limited(response: httpx.Response) -> int:
    """The `Retry-After` of a 429 `rate_limited` answer that opened no session."""
    assert response.status_code == 429 and response.json()["error"] == "rate_limited", response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    seconds = int(response.headers["Retry-After"])
    assert seconds > 0
    return seconds


# -- 1. limits on guessed secrets ------------------------------------------------------------------

async def test_forty_wrong_passwords_from_one_address_block_it_even_for_the_right_one(demo):
    gw, clock = demo["gateway"], demo["clock"]
    answers = [await staff_sign_in(gw, "203.0.113.7", f"wrong-{i}") for i in range(40)]
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [401] * 5
    assert set(statuses) == {401, 429}
    # Every try from the address counts against it: from the 21st on it is blocked.
    assert statuses[20:] == [429] * 20
    assert all(limited(a) for a in answers[20:])

    right = await staff_sign_in(gw, "203.0.113.7", ADMIN_PASSWORD)
    blocked_for = limited(right)
    assert blocked_for > 60  # the block grew while the address kept trying

    # The owner, elsewhere, is at most slowed: a wait of at most a minute, then in.
    owner = await staff_sign_in(gw, "198.51.100.20", ADMIN_PASSWORD)
    if owner.status_code != 200:
        assert limited(owner) <= 60
        clock.advance(61)
        owner = await staff_sign_in(gw, "198.51.100.20", ADMIN_PASSWORD)
    assert owner.status_code == 200, owner.text
    assert limited(await staff_sign_in(gw, "203.0.113.7", ADMIN_PASSWORD)) > 0  # still blocked there

    clock.advance(blocked_for + 1)  # the window has passed
    assert (await staff_sign_in(gw, "203.0.113.7", ADMIN_PASSWORD)).status_code == 200


async def test_failed_sign_ins_slow_an_account_with_a_growing_wait_that_never_locks_its_owner_out(demo):
    gw, clock = demo["gateway"], demo["clock"]
    waits = []
    for attempt in range(12):  # a stranger from ever new addresses: none of them is blocked
        if waits:
            clock.advance(waits[-1])
        wrong = await staff_sign_in(gw, f"203.0.113.{attempt + 1}", "guess")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials", wrong.text
        if attempt >= 4:  # from the 5th failure on, the account waits before the next try, the right one too
            waits.append(limited(await staff_sign_in(gw, f"192.0.2.{attempt + 1}", ADMIN_PASSWORD)))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]  # doubling, at most a minute

    # The owner waits at most a minute, then signs in; that clears the account's count.
    assert limited(await staff_sign_in(gw, "198.51.100.20", ADMIN_PASSWORD)) <= 60
    clock.advance(60)
    assert (await staff_sign_in(gw, "198.51.100.20", ADMIN_PASSWORD)).status_code == 200
    again = await staff_sign_in(gw, "198.51.100.20", "typo")
    assert again.status_code == 401 and again.json()["error"] == "invalid_credentials"


async def test_an_address_that_keeps_trying_while_blocked_waits_longer(demo):
    gw, clock = demo["gateway"], demo["clock"]
    for i in range(20):  # different accounts, so that no account's own limit is what answers
        wrong = await staff_sign_in(gw, "203.0.113.50", "guess", email=f"nobody{i}@example.com")
        assert wrong.status_code == 401, (i, wrong.text)
    first = limited(await staff_sign_in(gw, "203.0.113.50", "guess", email="another@example.com"))
    assert 60 < first <= 120
    clock.advance(first - 1)  # tries again before the block is over
    second = limited(await staff_sign_in(gw, "203.0.113.50", "guess", email="yet-another@example.com"))
    assert second > first


async def test_wrong_email_codes_slow_the_address_and_block_the_client(demo):
    gw, settings, clock = demo["gateway"], demo["settings"], demo["clock"]
    async with httpx.AsyncClient(base_url=gw.base_url, headers=at("198.51.100.30")) as browser:
        for _ in range(2):  # two codes, five wrong tries each: ten failures for this address
            await browser.post(EMAIL_PATH, json={"email": "coded@example.com"})
            code = code_for(settings, "coded@example.com")
            wrong = "000000" if code != "000000" else "111111"
            for _ in range(5):
                answer = await browser.post(VERIFY, json={"email": "coded@example.com", "code": wrong})
                assert answer.status_code == 401 and answer.json()["error"] == "invalid_code"
        await browser.post(EMAIL_PATH, json={"email": "coded@example.com"})
        right = code_for(settings, "coded@example.com")
        waited = limited(await browser.post(VERIFY, json={"email": "coded@example.com", "code": right}))
        assert waited <= 60
        clock.advance(waited)
        signed_in = await browser.post(VERIFY, json={"email": "coded@example.com", "code": right})
        assert signed_in.status_code == 200 and signed_in.json()["method"] == "email", signed_in.text

    # One client address guessing codes across addresses is blocked, the right code too.
    async with httpx.AsyncClient(base_url=gw.base_url, headers=at("203.0.113.60")) as guesser:
        await guesser.post(EMAIL_PATH, json={"email": "victim@example.com"})
        for attempt in range(30):
            answer = await guesser.post(VERIFY, json={"email": f"guess{attempt}@example.com", "code": "123456"})
            assert answer.status_code == 401, (attempt, answer.text)
        right = code_for(settings, "victim@example.com")
        limited(await guesser.post(VERIFY, json={"email": "victim@example.com", "code": right}))
    assert count(settings.database_url("auth"), "access_codes", "used_at IS NULL") >= 1


async def test_wrong_api_keys_count_against_the_client_address(demo):
    gw = demo["gateway"]
    portal = "/api/v1/admin/portals/demo"
    async with httpx.AsyncClient(base_url=gw.base_url) as client:
        for i in range(20):
            wrong = await client.get(portal, headers={"Authorization": f"Bearer pk_guess_{i}", **at("203.0.113.70")})
            assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized", (i, wrong.text)
        limited(await client.get(portal, headers={**ADMIN, **at("203.0.113.70")}))
        assert (await client.get(portal, headers={**ADMIN, **at("198.51.100.70")})).status_code == 200


async def test_retry_after_travels_as_a_field_not_in_the_words(demo):
    from contracts.errors import ErrorCode, ServiceError
    from contracts.rpc import SessionOpened, StaffLogin
    from services.runtime.rpc import RpcClient

    gw, auth = demo["gateway"], demo["auth"]
    for i in range(20):
        await staff_sign_in(gw, "203.0.113.80", "guess", email=f"field{i}@example.com")
    # Over RPC the wait is a field of the error, in seconds, whatever its words say...
    with pytest.raises(ServiceError) as over_rpc:
        await RpcClient(auth.broker).call(operations.auth.staff_login, StaffLogin(
            email="admin@example.com", password=ADMIN_PASSWORD, client_ip="203.0.113.80"))
    assert over_rpc.value.code is ErrorCode.rate_limited and over_rpc.value.retry_after == 120
    # ...and over HTTP the `Retry-After` header.
    assert limited(await staff_sign_in(gw, "203.0.113.80", ADMIN_PASSWORD)) == 240


# -- 4. one account per e-mail, however it is spelt ------------------------------------------------

async def test_look_alike_spellings_of_an_address_are_one_account(demo):
    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    auth_db = settings.database_url("auth")

    async def sso(email: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=gw.base_url) as browser:
            return await browser.post(SSO, json={"token": sign(secret, email=email)})

    first = await sso("ana.case@example.com")
    assert first.status_code == 200, first.text
    for spelling in ("Ａna.case@example.com",  # fullwidth letters
                     "ＡＮＡ.ＣＡＳＥ＠ＥＸＡＭＰＬＥ.ＣＯＭ",  # fullwidth, at-sign too
                     "ANA.CASE@EXAMPLE.COM", " ana.case@example.com "):
        again = await sso(spelling)
        assert again.status_code == 200, (spelling, again.text)
        assert again.json()["user_id"] == first.json()["user_id"], spelling
        assert again.json()["email"] == "ana.case@example.com"

    nfc = await sso(unicodedata.normalize("NFC", "José@example.com"))
    nfd = await sso(unicodedata.normalize("NFD", "JOSÉ@example.com"))
    assert nfc.json()["user_id"] == nfd.json()["user_id"]
    unicode_domain = await sso("ana@bücher.example")
    punycode_domain = await sso("ANA@XN--BCHER-KVA.example")
    assert unicode_domain.json()["user_id"] == punycode_domain.json()["user_id"]
    assert unicode_domain.json()["email"] == "ana@bücher.example"

    # E-mail access with a look-alike spelling finds the same account.
    async with httpx.AsyncClient(base_url=gw.base_url) as browser:
        started = await browser.post(EMAIL_PATH, json={"email": "ａｎａ.case@example.com"})
        assert started.status_code == 202
        assert (await browser.get("/api/v1/session")).json()["user_id"] == first.json()["user_id"]
    assert count(auth_db, "users", "email LIKE :e", e="%case@example.com") == 1

    # What cannot be normalised is refused with `invalid_email`; no account is made.
    users = count(auth_db, "users")
    for bad in ("ana@ex\u00adample.com", "ana@@example.com", "ana@exa mple.com", "ana@example..com"):
        refused = await sso(bad)
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_email"), (bad, refused.text)
        started = await gw.client.post(EMAIL_PATH, json={"email": bad})
        assert (started.status_code, started.json()["error"]) == (422, "invalid_email"), (bad, started.text)
    assert count(auth_db, "users") == users


async def test_staff_admin_api_and_other_channels_use_the_same_spelling(demo):
    gw, settings = demo["gateway"], demo["settings"]
    created = await gw.client.post("/api/v1/admin/staff", headers=ADMIN, json={
        "email": "Ｎew.Agent@Example.com", "role": "agent", "password": "a-long-agent-password"})
    assert created.status_code == 201, created.text
    assert created.json()["member"]["email"] == "new.agent@example.com"
    twin = await gw.client.post("/api/v1/admin/staff", headers=ADMIN, json={
        "email": "NEW.AGENT@EXAMPLE.COM", "role": "agent"})
    assert twin.status_code == 409 and twin.json()["error"] == "conflict"
    signed_in = await staff_sign_in(gw, "198.51.100.90", "a-long-agent-password", email="ｎｅｗ.agent@example.com")
    assert signed_in.status_code == 200 and signed_in.json()["role"] == "agent", signed_in.text

    # A message from another channel (an inbound e-mail, a webhook) finds the customer the same way.
    sso_user = (await gw.client.post(SSO, json={"token": sign(demo["secret"], email="chan@example.com")})).json()
    org_id = rows(settings.database_url("auth"), "SELECT org_id FROM portals WHERE slug = 'demo'")[0][0]
    nc = await nats.connect(settings.nats_url)
    try:
        reply = await nc.request("rpc.auth.ensure_customer", json.dumps(
            {"org_id": org_id, "portal": "demo", "email": "ＣＨＡＮ@example.com"}).encode(), timeout=5)
        bad = await nc.request("rpc.auth.ensure_customer", json.dumps(
            {"org_id": org_id, "portal": "demo", "email": "chan@@example.com"}).encode(), timeout=5)
    finally:
        await nc.close()
    assert json.loads(reply.data)["data"]["user_id"] == sso_user["user_id"]
    assert json.loads(bad.data)["error"] == "invalid_email"


# -- 5. NumericDate claims are numbers --------------------------------------------------------------

async def test_custom_sign_on_refuses_dates_that_are_not_numbers(demo):
    from urllib.parse import parse_qs, urlsplit

    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json={
        "custom_sign_on_enabled": True, "custom_sign_on_redirect_uri": "https://login.example.com/sso"})
    now = int(time.time())
    cases = [({"iat": str(now)}, "invalid_claim"), ({"iat": now, "exp": str(now + 600)}, "invalid_claim"),
             ({"iat": now, "nbf": str(now)}, "invalid_claim"), ({"iat": True}, "invalid_claim"),
             ({"iat": now, "exp": False}, "invalid_claim")]
    for claims, code in cases:
        async with httpx.AsyncClient(base_url=gw.base_url) as browser:
            # `referralUrl` starts custom sign-on at once (with other methods on, plain /login is the page).
            started = await browser.get("/portals/demo/login", params={"referralUrl": "/portals/demo/"})
            tracking = parse_qs(urlsplit(started.headers["location"]).query)["trackingToken"][0]
            token = jwt.encode({"email": "dated@example.com", **claims}, secret, algorithm="HS256")
            back = await browser.get("/portals/demo/login", params={"externalToken": token, "trackingToken": tracking})
            assert (back.status_code, back.json()["error"]) == (401, code), (claims, back.text)
            assert (await browser.get("/api/v1/session")).status_code == 401
    assert count(settings.database_url("auth"), "users", "email = 'dated@example.com'") == 0


# -- 6. open sessions follow the portal's current lifetime and idle timeout -------------------------

async def _age_session(settings: Settings, token: str, *, opened_ago: timedelta, idle_for: timedelta) -> None:
    nc = await nats.connect(settings.nats_url)
    try:
        kv = await nc.jetstream().key_value("sessions")
        stored = SessionRecord.model_validate_json((await kv.get(session_key(token))).value)
        now = datetime.now(UTC)
        stored.created_at = now - opened_ago
        stored.expires_at = stored.created_at + timedelta(hours=24)
        stored.last_seen_at = now - idle_for
        await kv.put(session_key(token), stored.model_dump_json().encode())
    finally:
        await nc.close()


async def test_shortening_a_portals_session_lifetime_ends_open_sessions_by_it(demo):
    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    browsers = {name: httpx.AsyncClient(base_url=gw.base_url) for name in ("old", "idle", "fresh", "staff")}
    try:
        for name in ("old", "idle", "fresh"):
            opened = await browsers[name].post(SSO, json={"token": sign(secret, email=f"{name}@example.com")})
            assert opened.status_code == 200, opened.text
        await browsers["staff"].post(STAFF, json={"email": "admin@example.com", "password": ADMIN_PASSWORD})
        await _age_session(settings, browsers["old"].cookies[SESSION_COOKIE], opened_ago=timedelta(hours=2),
                           idle_for=timedelta(seconds=0))
        await _age_session(settings, browsers["idle"].cookies[SESSION_COOKIE], opened_ago=timedelta(minutes=20),
                           idle_for=timedelta(minutes=10))
        for browser in browsers.values():  # within 24 h and 2 h idle: all open
            assert (await browser.get("/api/v1/session")).status_code == 200
        await _age_session(settings, browsers["idle"].cookies[SESSION_COOKIE], opened_ago=timedelta(minutes=20),
                           idle_for=timedelta(minutes=10))  # again: reading it just now touched it

        changed = await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN,
                                        json={"session_lifetime_hours": 1, "idle_timeout_minutes": 5})
        assert changed.status_code == 200, changed.text

        async def ended(name: str) -> bool:
            return (await browsers[name].get("/api/v1/session")).status_code == 401
        await wait_until(lambda: ended("old"), timeout=10)  # opened 2 h ago, lifetime now 1 h
        await wait_until(lambda: ended("idle"), timeout=10)  # 10 minutes idle, idle timeout now 5
        fresh = await browsers["fresh"].get("/api/v1/session")
        assert fresh.status_code == 200
        ends_at = datetime.fromisoformat(fresh.json()["ends_at"])
        assert ends_at <= datetime.now(UTC) + timedelta(minutes=5)  # the new idle timeout shows
        assert (await browsers["staff"].get("/api/v1/session")).status_code == 200  # staff sessions: no portal
    finally:
        for browser in browsers.values():
            await browser.aclose()


async def test_a_gateway_started_later_knows_the_current_lifetimes(demo, settings):
    """The policy lives in the bucket, not only in the memory of gateways that saw the change."""
    import asyncio

    import uvicorn

    from services.gateway.app import create_app
    from services.runtime.nats import free_port

    gw, secret = demo["gateway"], demo["secret"]
    async with httpx.AsyncClient(base_url=gw.base_url) as browser:
        assert (await browser.post(SSO, json={"token": sign(secret, email="later@example.com")})).status_code == 200
        token = browser.cookies[SESSION_COOKIE]
    await _age_session(settings, token, opened_ago=timedelta(hours=3), idle_for=timedelta(seconds=0))
    changed = await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN,
                                    json={"session_lifetime_hours": 2})
    assert changed.status_code == 200
    port = free_port()
    second = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on", proxy_headers=False))
    task = asyncio.create_task(second.serve())
    try:
        await wait_until(lambda: second.started, timeout=10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", cookies={SESSION_COOKIE: token}) as other:
            await wait_until(lambda: _status(other), timeout=10)
            assert (await other.get("/api/v1/session")).status_code == 401
    finally:
        second.should_exit = True
        await task


async def _status(client: httpx.AsyncClient) -> bool:
    """The gateway answers about sessions (it is connected to the bus)."""
    return (await client.get("/api/v1/session")).status_code in (200, 401)
