"""Sign-in through the gateway with real NATS: SSO tokens (and a corpus of bad ones), secret
rotation, anonymous and staff sessions, logout across gateway replicas, the admin API."""

import asyncio
import base64
import json
import time
import uuid

import httpx
import jwt
import nats
import pytest
import uvicorn

from contracts.events import UserRegistered
from contracts.sessions import SESSION_COOKIE
from services.runtime.nats import free_port
from tests.helpers import count, rows
from tests.kit.seeding import seed
from tests.kit.streams import stream_events
from tests.kit.sign_in import ADMIN, API_KEY, SSO, portal_secret, sign


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged(header: dict, payload: dict, signature: bytes = b"sig") -> str:
    return f"{b64(header)}.{b64(payload)}.{b64(signature)}"


def hs(header_extra: dict, payload: dict, secret: str) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=header_extra)


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    seed(settings)
    secret, kid = await portal_secret(gateway)
    return {"secret": secret, "kid": kid, "gateway": gateway, "settings": settings}


async def test_sso_login_creates_the_account_once_and_opens_a_session(demo):
    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    response = await gw.client.post(SSO, json={"token": sign(secret, email="Sso.User@Example.com",
                                                             displayName="Sso User")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == "sso.user@example.com" and body["method"] == "sso" and body["kind"] == "customer"
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    me = await gw.client.get("/api/v1/session")
    assert me.status_code == 200 and me.json()["user_id"] == body["user_id"]
    assert me.json()["portal"] == "demo"

    again = await gw.client.post(SSO, json={"token": sign(secret, email="sso.user@example.com")})
    assert again.json()["user_id"] == body["user_id"]
    assert count(settings.database_url("auth"), "users", "email = 'sso.user@example.com'") == 1
    events = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
              if e.data["email"] == "sso.user@example.com"]
    assert len(events) == 1 and events[0].data["method"] == "sso"


def bad_tokens(secret: str, other_secret: str, kid: str) -> list[tuple[str, str, str]]:
    """(label, token, expected error code); each token names its own e-mail, none may get an account."""
    now = int(time.time())

    def email(label: str) -> str:
        return f"bad-{label}@example.com"

    def claims(label: str, **extra: object) -> dict:
        return {"email": email(label), "iat": now, **extra}

    good = hs({}, claims("tampered"), secret)
    head, payload, sig = good.split(".")
    tampered_payload = b64(claims("tampered-other"))
    return [
        ("alg-none", forged({"alg": "none", "typ": "JWT"}, claims("alg-none"), b""), "bad_algorithm"),
        ("alg-none-upper", forged({"alg": "None"}, claims("alg-none-upper"), b""), "bad_algorithm"),
        ("hs512", jwt.encode(claims("hs512"), secret, algorithm="HS512"), "bad_algorithm"),
        ("hs384", jwt.encode(claims("hs384"), secret, algorithm="HS384"), "bad_algorithm"),
        ("rs256-header", forged({"alg": "RS256"}, claims("rs256-header")), "bad_algorithm"),
        ("rs-hs-confusion", forged({"alg": "RS256", "typ": "JWT"}, claims("rs-hs-confusion"),
                                   jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256).sign(
                                       b"x", secret.encode())), "bad_algorithm"),
        ("es256-header", forged({"alg": "ES256"}, claims("es256-header")), "bad_algorithm"),
        ("no-alg", forged({"typ": "JWT"}, claims("no-alg")), "bad_algorithm"),
        ("wrong-secret", hs({}, claims("wrong-secret"), "x" * 43), "bad_signature"),
        ("other-portal", hs({}, claims("other-portal"), other_secret), "bad_signature"),
        ("tampered", f"{head}.{tampered_payload}.{sig}", "bad_signature"),
        ("truncated-signature", f"{head}.{payload}.{b64(base64.urlsafe_b64decode(sig + '==')[:-4])}", "bad_signature"),
        ("signature-not-base64", good[:-6], "invalid_token"),
        ("empty", "", "invalid_token"),
        ("not-a-jwt", "not-a-jwt", "invalid_token"),
        ("two-segments", f"{head}.{payload}", "invalid_token"),
        ("garbage-base64", "%%%.%%%.%%%", "invalid_token"),
        ("header-not-json", f"{b64(b'not json')}.{payload}.{sig}", "invalid_token"),
        ("expired", hs({}, claims("expired", exp=now - 3600), secret), "token_expired"),
        ("expired-past-leeway", hs({}, claims("expired-past-leeway", exp=now - 61), secret), "token_expired"),
        ("iat-future", hs({}, claims("iat-future", iat=now + 120), secret), "token_not_yet_valid"),
        ("nbf-future", hs({}, claims("nbf-future", nbf=now + 600), secret), "token_not_yet_valid"),
        ("too-old", hs({}, claims("too-old", iat=now - 16 * 60 - 61), secret), "token_too_old"),
        ("no-iat", hs({}, {"email": email("no-iat")}, secret), "missing_claim"),
        ("no-email", hs({}, {"iat": now}, secret), "missing_claim"),
        ("empty-email", hs({}, {"email": " ", "iat": now}, secret), "missing_claim"),
        ("email-not-string", hs({}, {"email": 42, "iat": now}, secret), "missing_claim"),
        ("invalid-email", hs({}, {"email": "not-an-address", "iat": now}, secret), "invalid_email"),
        ("iat-not-number", hs({}, claims("iat-not-number", iat="yesterday"), secret), "invalid_claim"),
        # RFC 7519 NumericDate is a JSON number: digits in a string, booleans, null and non-numbers are refused.
        ("iat-string", hs({}, claims("iat-string", iat=str(now)), secret), "invalid_claim"),
        ("iat-string-decimal", hs({}, claims("iat-string-decimal", iat=f"{now}.0"), secret), "invalid_claim"),
        ("exp-string", hs({}, claims("exp-string", exp=str(now + 600)), secret), "invalid_claim"),
        ("nbf-string", hs({}, claims("nbf-string", nbf=str(now - 10)), secret), "invalid_claim"),
        ("iat-true", hs({}, claims("iat-true", iat=True), secret), "invalid_claim"),
        ("exp-true", hs({}, claims("exp-true", exp=True), secret), "invalid_claim"),
        ("nbf-false", hs({}, claims("nbf-false", nbf=False), secret), "invalid_claim"),
        ("exp-null", hs({}, claims("exp-null", exp=None), secret), "invalid_claim"),
        ("iat-list", hs({}, claims("iat-list", iat=[now]), secret), "invalid_claim"),
        ("iat-object", hs({}, claims("iat-object", iat={"seconds": now}), secret), "invalid_claim"),
        ("iat-nan", hs({}, claims("iat-nan", iat=float("nan")), secret), "invalid_claim"),
        ("exp-infinity", hs({}, claims("exp-infinity", exp=float("inf")), secret), "invalid_claim"),
        ("iat-huge-negative", hs({}, claims("iat-huge-negative", iat=-10**400), secret), "invalid_claim"),
        ("exp-huge", hs({}, claims("exp-huge", exp=10**30), secret), "invalid_claim"),
        ("crit-header", hs({"crit": ["exp"]}, claims("crit-header"), secret), "unsupported_header"),
        ("typ-jwe", hs({"typ": "JWE"}, claims("typ-jwe"), secret), "unsupported_header"),
        ("unknown-kid", hs({"kid": "k_doesnotexist"}, claims("unknown-kid"), secret), "unknown_key"),
        ("right-kid-wrong-secret", hs({"kid": kid}, claims("right-kid-wrong-secret"), other_secret), "bad_signature"),
        ("jti-not-string", hs({}, claims("jti-not-string", jti=7), secret), "invalid_token"),
        ("display-name-not-string", hs({}, claims("display-name-not-string", displayName=["x"]), secret),
         "invalid_token"),
    ]


async def test_negative_token_corpus_is_rejected_with_the_right_code(demo):
    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    created = await gw.client.post("/api/v1/admin/portals", headers=ADMIN, json={"slug": "other", "name": "Other"})
    assert created.status_code == 201, created.text
    other_secret = (await gw.client.get(f"/v1/auth/kb/{created.json()['kb_id']}/settings",
                                        headers=ADMIN)).json()["data"]["attributes"]["secret"]
    users_before = count(settings.database_url("auth"), "users")
    corpus = bad_tokens(secret, other_secret, demo["kid"])
    assert len(corpus) >= 25
    for label, token, code in corpus:
        async with httpx.AsyncClient(base_url=gw.base_url) as fresh:  # no cookie from an earlier case
            response = await fresh.post(SSO, json={"token": token})
            assert response.json().get("error") == code, (label, response.text)
            assert response.status_code in (401, 422), (label, response.status_code)
            assert response.json()["message"], label
            assert SESSION_COOKIE not in response.headers.get("set-cookie", ""), label
    assert count(settings.database_url("auth"), "users") == users_before


async def test_a_token_id_is_accepted_once(demo):
    gw, secret = demo["gateway"], demo["secret"]
    token = sign(secret, email="jti@example.com", jti=str(uuid.uuid4()))
    assert (await gw.client.post(SSO, json={"token": token})).status_code == 200
    replay = await gw.client.post(SSO, json={"token": token})
    assert replay.status_code == 401 and replay.json()["error"] == "token_replayed"
    # The same jti on another portal is another token: not a replay there.
    other = await gw.client.post("/api/v1/admin/portals", headers=ADMIN, json={"slug": "second", "name": "Second"})
    await gw.client.patch("/api/v1/admin/portals/second/settings", headers=ADMIN, json={"sso_enabled": True})
    second_secret = (await gw.client.get(f"/v1/auth/kb/{other.json()['kb_id']}/settings",
                                         headers=ADMIN)).json()["data"]["attributes"]["secret"]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    there = await gw.client.post("/api/v1/portals/second/session/sso",
                                 json={"token": sign(second_secret, email="jti@example.com", jti=jti)})
    assert there.status_code == 200, there.text


async def test_secret_rotation_keeps_the_old_secret_for_the_grace_period_only(demo):
    gw, old = demo["gateway"], demo["secret"]
    rotated = await gw.client.post("/api/v1/admin/portals/demo/secrets", headers=ADMIN, json={"grace_minutes": 60})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    for secret, headers in ((old, {}), (new["secret"], {}), (new["secret"], {"kid": new["kid"]})):
        token = jwt.encode({"email": "rot@example.com", "iat": int(time.time())}, secret, headers=headers)
        assert (await gw.client.post(SSO, json={"token": token})).status_code == 200

    # A second rotation with no grace: everything before it stops at once, the newest works.
    newest = (await gw.client.post("/api/v1/admin/portals/demo/secrets", headers=ADMIN,
                                   json={"grace_minutes": 0})).json()
    for secret in (old, new["secret"]):
        refused = await gw.client.post(SSO, json={"token": sign(secret, email="rot@example.com")})
        assert refused.json()["error"] == "bad_signature"
    assert (await gw.client.post(SSO, json={"token": sign(newest["secret"], email="rot@example.com")})).status_code == 200

    # Revoked: stops at once, and a token naming it gets `unknown_key`.
    revoked = await gw.client.delete(f"/api/v1/admin/portals/demo/secrets/{newest['kid']}", headers=ADMIN)
    assert revoked.status_code == 200
    named = jwt.encode({"email": "rot@example.com", "iat": int(time.time())}, newest["secret"],
                       headers={"kid": newest["kid"]})
    assert (await gw.client.post(SSO, json={"token": named})).json()["error"] == "unknown_key"
    portal = (await gw.client.get("/api/v1/admin/portals/demo", headers=ADMIN)).json()
    assert not any(s["live"] for s in portal["secrets"])
    assert all("secret" not in s for s in portal["secrets"])  # values are never listed


async def test_first_logins_in_a_retry_storm_make_one_account(demo):
    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]

    async def login() -> httpx.Response:
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=20) as client:
            return await client.post(SSO, json={"token": sign(secret, email="storm@example.com")})

    responses = await asyncio.gather(*(login() for _ in range(25)))
    assert [r.status_code for r in responses] == [200] * 25, [r.text for r in responses if r.status_code != 200]
    assert len({r.json()["user_id"] for r in responses}) == 1
    assert count(settings.database_url("auth"), "users", "email = 'storm@example.com'") == 1
    await asyncio.sleep(0.5)
    events = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
              if e.data["email"] == "storm@example.com"]
    assert len(events) == 1


async def test_logout_ends_the_session_on_every_gateway(settings, stack, gateway):
    from services.gateway.app import create_app

    seed(settings)
    secret, _ = await portal_secret(gateway)
    port = free_port()
    second = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(second.serve())
    try:
        while not second.started:
            await asyncio.sleep(0.05)
        login = await gateway.client.post(SSO, json={"token": sign(secret, email="two@example.com")})
        cookie = {SESSION_COOKIE: login.cookies[SESSION_COOKIE]}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", cookies=cookie) as other:
            deadline = time.monotonic() + 10
            while (await other.get("/api/v1/session")).status_code != 200:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert (await gateway.client.delete("/api/v1/session")).json() == {"ended": True}
            # The very next request on the other gateway is refused: the logout applies at once.
            after = await other.get("/api/v1/session")
            assert after.status_code == 401 and after.json()["error"] == "unauthorized"
        assert (await gateway.client.get("/api/v1/session")).status_code == 401
    finally:
        second.should_exit = True
        await task


async def test_anonymous_sessions_only_where_allowed(demo):
    gw = demo["gateway"]
    portal = (await gw.client.get("/api/v1/admin/portals/demo", headers=ADMIN)).json()
    response = await gw.client.post("/api/v1/portals/demo/session/anonymous")
    assert response.status_code == 200
    assert response.json()["kind"] == "anonymous" and response.json()["user_id"] == portal["anonymous_user_id"]
    assert response.json()["email"] is None
    await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json={"anonymous_enabled": False})
    refused = await gw.client.post("/api/v1/portals/demo/session/anonymous")
    assert refused.status_code == 403 and refused.json()["error"] == "method_disabled"


async def test_disabled_sso_and_unknown_portal(demo):
    gw, secret = demo["gateway"], demo["secret"]
    await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json={"sso_enabled": False})
    off = await gw.client.post(SSO, json={"token": sign(secret, email="off@example.com")})
    assert off.status_code == 403 and off.json()["error"] == "method_disabled"
    nowhere = await gw.client.post("/api/v1/portals/nowhere/session/sso", json={"token": "x"})
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "unknown_portal"


async def test_session_lifetime_is_at_least_an_hour(demo):
    gw, secret = demo["gateway"], demo["secret"]
    for bad in ({"session_lifetime_hours": 0}, {"idle_timeout_minutes": 1}, {"sso_token_max_age_minutes": 90},
                {"custom_sign_on_redirect_uri": "http://evil.example.com/login"},
                # the host is compared whole: a look-alike of localhost is somebody else's site
                {"custom_sign_on_redirect_uri": "http://localhost.evil.example/login"},
                {"custom_sign_on_redirect_uri": "http://localhost@evil.example/login"},
                {"custom_sign_on_redirect_uri": "https:///login"}):
        response = await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json=bad)
        assert response.status_code == 422 and response.json()["error"] == "invalid_setting", bad
    unknown = await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json={"colour": "red"})
    assert unknown.status_code == 422 and unknown.json()["error"] == "invalid_request"
    portal = (await gw.client.get("/api/v1/admin/portals/demo", headers=ADMIN)).json()
    assert portal["settings"]["session_lifetime_hours"] == 24  # nothing changed by the refusals

    ok = await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN,
                               json={"session_lifetime_hours": 1})
    assert ok.status_code == 200 and ok.json()["settings"]["session_lifetime_hours"] == 1
    session = (await gw.client.post(SSO, json={"token": sign(secret, email="hour@example.com")})).json()
    from datetime import datetime
    lifetime = datetime.fromisoformat(session["expires_at"]) - datetime.fromisoformat(session["created_at"])
    assert lifetime.total_seconds() == 3600


async def test_staff_sign_in(demo):
    gw = demo["gateway"]
    ok = await gw.client.post("/api/v1/staff/session",
                              json={"email": "Admin@Example.com", "password": "a-long-admin-password"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["kind"] == "staff" and ok.json()["role"] == "admin" and ok.json()["method"] == "password"
    # A signed-in admin may use the admin API without a key.
    assert (await gw.client.get("/api/v1/admin/portals/demo")).status_code == 200
    wrong = [await gw.client.post("/api/v1/staff/session", json=body) for body in (
        {"email": "admin@example.com", "password": "wrong"},
        {"email": "nobody@example.com", "password": "a-long-admin-password"},
        {"email": "not an email", "password": "x"})]
    assert {(r.status_code, r.json()["error"], r.json()["message"]) for r in wrong} == {
        (401, "invalid_credentials", "Wrong e-mail or password.")}


async def test_admin_api_needs_an_admin(demo):
    gw, secret = demo["gateway"], demo["secret"]
    async with httpx.AsyncClient(base_url=gw.base_url) as anonymous:
        assert (await anonymous.get("/api/v1/admin/portals/demo")).status_code == 401
        bad_key = await anonymous.get("/api/v1/admin/portals/demo", headers={"Authorization": "Bearer pk_nope"})
        assert bad_key.status_code == 401 and bad_key.json()["error"] == "unauthorized"
        assert (await anonymous.get("/api/v1/admin/portals/demo",
                                    headers={"Authorization": "Basic abc"})).status_code == 401
        customer = await anonymous.post(SSO, json={"token": sign(secret, email="cust@example.com")})
        assert customer.status_code == 200
        forbidden = await anonymous.get("/api/v1/admin/portals/demo")
        assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
        assert (await anonymous.get("/v1/auth/kb/whatever/settings")).status_code == 403
    missing = await gw.client.get("/v1/auth/kb/00000000-0000-0000-0000-000000000000/settings", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    duplicate = await gw.client.post("/api/v1/admin/portals", headers=ADMIN, json={"slug": "demo", "name": "Again"})
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "conflict"
    bad_slug = await gw.client.post("/api/v1/admin/portals", headers=ADMIN, json={"slug": "Bad Slug!", "name": "x"})
    assert bad_slug.status_code == 422


def test_portal_secrets_have_256_bits(settings):
    from services.auth.tokens import new_secret

    secrets = {new_secret().secret for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) == 32 for s in secrets)


async def test_sessions_bucket_never_holds_a_usable_token(demo):
    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    response = await gw.client.post(SSO, json={"token": sign(secret, email="kv@example.com")})
    token = response.cookies[SESSION_COOKIE]
    nc = await nats.connect(settings.nats_url)
    try:
        kv = await nc.jetstream().key_value("sessions")
        keys = await kv.keys()
        assert keys and token not in keys
        for key in keys:
            assert token not in (await kv.get(key)).value.decode()
    finally:
        await nc.close()
    assert rows(settings.database_url("auth"), "SELECT count(*) FROM users WHERE email = 'kv@example.com'") == [(1,)]


async def test_sso_after_anonymous_or_unverified_links_the_identities(demo):
    from contracts.events import IdentityLinked
    from contracts.sessions import session_key

    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    async with httpx.AsyncClient(base_url=gw.base_url) as browser:
        anonymous = (await browser.post("/api/v1/portals/demo/session/anonymous")).json()
        anonymous_key = session_key(browser.cookies[SESSION_COOKIE])
        signed = (await browser.post(SSO, json={"token": sign(secret, email="linked@example.com")})).json()
        # A further SSO login of a customer links nothing more.
        await browser.post(SSO, json={"token": sign(secret, email="linked@example.com")})
    async with httpx.AsyncClient(base_url=gw.base_url) as browser:
        await browser.post("/api/v1/portals/demo/session/email", json={"email": "unverified@example.com"})
        unverified = (await browser.get("/api/v1/session")).json()
        unverified_key = session_key(browser.cookies[SESSION_COOKIE])
        await browser.post(SSO, json={"token": sign(secret, email="linked@example.com")})
        assert (await browser.get("/api/v1/session")).json()["method"] == "sso"

    await asyncio.sleep(0.5)
    events = await stream_events(settings.nats_url, IdentityLinked.subject())
    assert [(e.data["from_user_id"], e.data["from_method"], e.data["from_session"], e.data["to_user_id"])
            for e in events] == [
        (anonymous["user_id"], "anonymous", anonymous_key, signed["user_id"]),
        (unverified["user_id"], "email_unverified", unverified_key, signed["user_id"]),
    ]


async def test_custom_sign_on_redirect_and_return(demo):
    from urllib.parse import parse_qs, urlsplit

    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json={
        "custom_sign_on_enabled": True, "custom_sign_on_redirect_uri": "https://login.example.com/sso?app=portal"})

    async def start(browser: httpx.AsyncClient, referral: str = "/portals/demo/conversations") -> dict:
        response = await browser.get("/portals/demo/login", params={"referralUrl": referral})
        assert response.status_code == 303, response.text
        location = urlsplit(response.headers["location"])
        assert (location.scheme, location.netloc, location.path) == ("https", "login.example.com", "/sso")
        query = parse_qs(location.query)
        assert query["app"] == ["portal"] and len(query["trackingToken"][0]) >= 24
        back = urlsplit(query["kustomerRedirectUri"][0])
        back_query = parse_qs(back.query)
        assert back.path == "/portals/demo/login" and back_query["trackingToken"] == query["trackingToken"]
        assert secret not in response.headers["location"]
        return {"tracking": query["trackingToken"][0], "referral": back_query["referralUrl"][0]}

    def external(email: str, **extra: object) -> str:
        return jwt.encode({"email": email, "iat": int(time.time()), **extra}, secret, algorithm="HS256")

    async with httpx.AsyncClient(base_url=gw.base_url) as browser:
        state = await start(browser)
        back = await browser.get("/portals/demo/login", params={
            "externalToken": external("Custom@Example.com"), "referralUrl": state["referral"],
            "trackingToken": state["tracking"]})
        assert back.status_code == 303 and back.headers["location"] == "/portals/demo/conversations"
        me = (await browser.get("/api/v1/session")).json()
        assert me["method"] == "custom_sign_on" and me["email"] == "custom@example.com"
        # The tracking token is single use.
        replay = await browser.get("/portals/demo/login", params={
            "externalToken": external("custom@example.com"), "trackingToken": state["tracking"]})
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_state"

        # Returning customer, other-origin referral: signed in, sent to the portal home instead.
        state = await start(browser, referral="https://evil.example.com/steal")
        back = await browser.get("/portals/demo/login", params={
            "externalToken": external("custom@example.com"), "trackingToken": state["tracking"]})
        assert back.status_code == 303 and back.headers["location"] == "/portals/demo"

        # An expired external token (15 minutes from iat) is refused; nothing is signed in.
        state = await start(browser)
        old = await browser.get("/portals/demo/login", params={
            "externalToken": external("late@example.com", iat=int(time.time()) - 16 * 60 - 61),
            "trackingToken": state["tracking"]})
        assert old.status_code == 401 and old.json()["error"] == "token_too_old"

    # A return in another browser (no nonce cookie) does not sign in.
    async with httpx.AsyncClient(base_url=gw.base_url) as first, httpx.AsyncClient(base_url=gw.base_url) as other:
        state = await start(first)
        stolen = await other.get("/portals/demo/login", params={
            "externalToken": external("custom@example.com"), "trackingToken": state["tracking"]})
        assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_state"
    assert count(settings.database_url("auth"), "users", "email = 'custom@example.com'") == 1
    assert count(settings.database_url("auth"), "users", "email = 'late@example.com'") == 0


async def test_login_page_when_custom_sign_on_is_off(demo):
    gw = demo["gateway"]
    await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json={"custom_sign_on_enabled": False})
    page = await gw.client.get("/portals/demo/login")
    assert page.status_code == 200 and "<h1 id=\"sign-in-title\">Log in</h1>" in page.text and 'type="email"' in page.text
    missing = await gw.client.get("/portals/nope/login")
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_portal"


async def test_api_keys_are_shown_once_stored_hashed_and_revocable(demo):
    gw, settings = demo["gateway"], demo["settings"]
    created = await gw.client.post("/api/v1/admin/api-keys", headers=ADMIN, json={"name": "crm", "role": "org.admin"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    mine = {"Authorization": f"Bearer {key}"}
    assert (await gw.client.get("/api/v1/admin/portals/demo", headers=mine)).status_code == 200
    listed = (await gw.client.get("/api/v1/admin/api-keys", headers=ADMIN)).json()["keys"]
    assert {k["name"] for k in listed} == {"bootstrap", "crm"} and all("key" not in k for k in listed)
    assert rows(settings.database_url("auth"), "SELECT count(*) FROM api_keys WHERE key_hash = :k", k=key) == [(0,)]

    revoked = await gw.client.delete(f"/api/v1/admin/api-keys/{created.json()['id']}", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    refused = await gw.client.get("/api/v1/admin/portals/demo", headers=mine)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"

    narrow = (await gw.client.post("/api/v1/admin/api-keys", headers=ADMIN,
                                   json={"name": "reader", "role": "org.read"})).json()["key"]
    forbidden = await gw.client.get("/api/v1/admin/portals/demo", headers={"Authorization": f"Bearer {narrow}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"

    expired = await gw.client.post("/api/v1/admin/api-keys", headers=ADMIN,
                                   json={"name": "old", "role": "org.admin", "expires_at": "2001-01-01T00:00:00Z"})
    assert expired.status_code == 422 and expired.json()["error"] == "invalid_request"
    bad_role = await gw.client.post("/api/v1/admin/api-keys", headers=ADMIN, json={"name": "x", "role": "root"})
    assert bad_role.status_code == 422
    assert len((await gw.client.get("/api/v1/admin/api-keys", headers=ADMIN)).json()["keys"]) == 3

    staff = (await gw.client.get("/api/v1/admin/staff", headers=ADMIN)).json()["staff"]
    assert [(s["email"], s["role"]) for s in staff] == [("admin@example.com", "admin")]


async def test_an_idle_session_ends(demo):
    from datetime import UTC, datetime, timedelta

    from contracts.sessions import SessionRecord, session_key

    gw, secret, settings = demo["gateway"], demo["secret"], demo["settings"]
    login = await gw.client.post(SSO, json={"token": sign(secret, email="idle@example.com")})
    key = session_key(login.cookies[SESSION_COOKIE])
    nc = await nats.connect(settings.nats_url)
    try:  # as if the last request were three hours ago (idle timeout: two hours)
        kv = await nc.jetstream().key_value("sessions")
        stored = SessionRecord.model_validate_json((await kv.get(key)).value)
        stored.last_seen_at = datetime.now(UTC) - timedelta(hours=3)
        await kv.put(key, stored.model_dump_json().encode())
    finally:
        await nc.close()
    ended = await gw.client.get("/api/v1/session")
    assert ended.status_code == 401 and ended.json()["error"] == "unauthorized"


async def test_admins_create_staff_accounts(demo):
    gw = demo["gateway"]
    created = await gw.client.post("/api/v1/admin/staff", headers=ADMIN,
                                   json={"email": "New.Agent@Example.com", "role": "agent", "display_name": "Nia"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["member"]["email"] == "new.agent@example.com" and body["member"]["role"] == "agent"
    password = body["password"]
    assert len(password) >= 16  # generated, shown this once
    signed_in = await gw.client.post("/api/v1/staff/session", json={"email": "new.agent@example.com",
                                                                    "password": password})
    assert signed_in.status_code == 200 and signed_in.json()["role"] == "agent"
    # An agent is not an admin: no staff accounts from them.
    refused = await gw.client.post("/api/v1/admin/staff", json={"email": "x@example.com", "role": "admin"})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    settings = demo["settings"]
    before = count(settings.database_url("auth"), "users")
    for bad, status, code in (({"email": "new.agent@example.com", "role": "agent"}, 409, "conflict"),
                              ({"email": "y@example.com", "role": "owner"}, 422, "invalid_request"),
                              ({"email": "not an email", "role": "agent"}, 422, "invalid_email"),
                              ({"email": "z@example.com", "role": "agent", "password": "short"}, 422,
                               "invalid_request")):
        response = await gw.client.post("/api/v1/admin/staff", headers=ADMIN, json=bad)
        assert (response.status_code, response.json()["error"]) == (status, code), (bad, response.text)
    assert count(settings.database_url("auth"), "users") == before
    listed = (await gw.client.get("/api/v1/admin/staff", headers=ADMIN)).json()["staff"]
    assert "new.agent@example.com" in {m["email"] for m in listed}
