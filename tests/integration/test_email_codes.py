"""E-mail access end to end: the code arrives in the mail catcher, signs in once, expires, allows 5
tries; an unverified browser holds its own session; rate limits answer 429."""

import asyncio
import re
import time
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from tests.helpers import count
from tests.kit.seeding import EMAIL_PATH, seed
from tests.kit.codes import code_for, mailbox

VERIFY = "/api/v1/portals/demo/session/email/verify"


async def fresh_window(window_seconds: int, needed: float = 20.0) -> None:
    """The limits count in fixed windows; start a run that must fit in one window early enough in it."""
    left = window_seconds - time.time() % window_seconds
    if left < needed:
        await asyncio.sleep(left + 0.1)


@pytest.fixture
async def portal(settings, stack, gateway):  # type: ignore[no-untyped-def]
    seed(settings)
    return gateway


async def test_code_signs_in_once(settings, portal):
    started = await portal.client.post(EMAIL_PATH, json={"email": "Code@Example.com"})
    assert started.status_code == 202 and started.json() == {"portal": "demo", "status": "pending_verification"}
    unverified = await portal.client.get("/api/v1/session")
    assert unverified.status_code == 200 and unverified.json()["method"] == "email_unverified"

    mail = [m for m in mailbox(settings) if m["To"] == "code@example.com"][-1]
    assert "Demo support" in mail["Subject"] and mail["Message-ID"]
    code = code_for(settings, "code@example.com")
    verified = await portal.client.post(VERIFY, json={"email": "code@example.com", "code": code})
    assert verified.status_code == 200, verified.text
    assert verified.json()["method"] == "email" and verified.json()["email"] == "code@example.com"
    me = await portal.client.get("/api/v1/session")
    assert me.json()["method"] == "email"

    again = await portal.client.post(VERIFY, json={"email": "code@example.com", "code": code})
    assert again.status_code == 401 and again.json()["error"] == "invalid_code"


async def test_a_code_tried_at_once_by_several_browsers_signs_in_one(settings, portal):
    await portal.client.post(EMAIL_PATH, json={"email": "race@example.com"})
    code = code_for(settings, "race@example.com")
    answers = await asyncio.gather(*(portal.client.post(VERIFY, json={"email": "race@example.com", "code": code})
                                     for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401, 401], [a.text for a in answers]
    assert all(a.json()["error"] == "invalid_code" for a in answers if a.status_code == 401)


async def test_a_new_code_replaces_the_old_and_wrong_tries_are_limited(settings, portal):
    await portal.client.post(EMAIL_PATH, json={"email": "tries@example.com"})
    first = code_for(settings, "tries@example.com")
    await portal.client.post(EMAIL_PATH, json={"email": "tries@example.com"})
    second = code_for(settings, "tries@example.com")
    if first != second:
        old = await portal.client.post(VERIFY, json={"email": "tries@example.com", "code": first})
        assert old.json()["error"] == "invalid_code"
    wrong = "000000" if second != "000000" else "111111"
    answers = [await portal.client.post(VERIFY, json={"email": "tries@example.com", "code": wrong})
               for _ in range(4 if first == second else 3)]
    assert all(a.status_code == 401 and a.json()["error"] == "invalid_code" for a in answers)
    last_wrong = await portal.client.post(VERIFY, json={"email": "tries@example.com", "code": wrong})
    assert "Too many wrong tries" in last_wrong.json()["message"]
    # The right code no longer works after 5 tries.
    right = await portal.client.post(VERIFY, json={"email": "tries@example.com", "code": second})
    assert right.status_code == 401 and right.json()["error"] == "invalid_code"


async def test_expired_code_is_refused(settings, portal):
    from sqlalchemy import text

    from services.runtime.db import make_engine

    await portal.client.post(EMAIL_PATH, json={"email": "late@example.com"})
    code = code_for(settings, "late@example.com")
    engine = make_engine(settings.database_url("auth"))
    with engine.begin() as conn:  # eleven minutes later
        conn.execute(text("UPDATE access_codes SET expires_at = :t"), {"t": "2000-01-01 00:00:00"})
    engine.dispose()
    late = await portal.client.post(VERIFY, json={"email": "late@example.com", "code": code})
    assert late.status_code == 401 and late.json()["error"] == "invalid_code"


async def test_an_unverified_browser_learns_nothing_of_the_account(settings, portal):
    import jwt as pyjwt

    from tests.kit.sign_in import SSO, portal_secret

    secret, _ = await portal_secret(portal)
    token = pyjwt.encode({"email": "known@example.com", "displayName": "Known Person", "iat": int(time.time())},
                         secret, algorithm="HS256")
    assert (await portal.client.post(SSO, json={"token": token})).status_code == 200
    async with httpx.AsyncClient(base_url=portal.base_url) as stranger:
        existing = await stranger.post(EMAIL_PATH, json={"email": "known@example.com"})
        seen = (await stranger.get("/api/v1/session")).json()
    async with httpx.AsyncClient(base_url=portal.base_url) as other:
        new = await other.post(EMAIL_PATH, json={"email": "brand-new@example.com"})
        fresh = (await other.get("/api/v1/session")).json()
    assert existing.json() == {"portal": "demo", "status": "pending_verification"}
    assert new.json() == {"portal": "demo", "status": "pending_verification"}
    assert seen["display_name"] is None and fresh["display_name"] is None
    assert seen["method"] == fresh["method"] == "email_unverified"


async def test_unknown_email_and_bad_input_answer_like_a_wrong_code(settings, portal):
    users = count(settings.database_url("auth"), "users")
    unknown = await portal.client.post(VERIFY, json={"email": "never@example.com", "code": "123456"})
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_code"
    bad = await portal.client.post(VERIFY, json={"email": "not-an-email", "code": "123456"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_email"
    missing = await portal.client.post(VERIFY, json={"email": "x@example.com"})
    assert missing.status_code == 422 and missing.json()["error"] == "invalid_request"
    assert count(settings.database_url("auth"), "users") == users


async def test_code_requests_are_rate_limited_per_address(settings, portal):
    await fresh_window(900)
    codes = []
    for _ in range(5):
        response = await portal.client.post(EMAIL_PATH, json={"email": "flood@example.com"})
        codes.append(response.status_code)
    assert codes == [202] * 5
    limited = await portal.client.post(EMAIL_PATH, json={"email": "flood@example.com"})
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # Another address is not affected.
    assert (await portal.client.post(EMAIL_PATH, json={"email": "calm@example.com"})).status_code == 202
    assert len([m for m in mailbox(settings) if m["To"] == "flood@example.com"]) == 5


async def test_token_logins_are_rate_limited_per_account(settings, portal):
    import jwt

    from tests.kit.sign_in import ADMIN, SSO, portal_secret

    secret, _ = await portal_secret(portal)
    await fresh_window(60)
    statuses = []
    for _ in range(31):
        token = jwt.encode({"email": "busy@example.com", "iat": int(time.time())}, secret, algorithm="HS256")
        async with httpx.AsyncClient(base_url=portal.base_url) as client:
            statuses.append((await client.post(SSO, json={"token": token})).status_code)
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    assert (await portal.client.get("/api/v1/admin/portals/demo", headers=ADMIN)).status_code == 200


async def test_code_tries_are_rate_limited_per_ip(settings, portal):
    await fresh_window(900)
    for attempt in range(30):
        # Spread over addresses so that no single code's own limit of 5 tries is what stops them.
        answer = await portal.client.post(VERIFY, json={"email": f"guess{attempt}@example.com", "code": "123456"})
        assert answer.status_code == 401, (attempt, answer.text)
    limited = await portal.client.post(VERIFY, json={"email": "guess@example.com", "code": "123456"})
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"


async def test_code_requests_and_token_logins_are_rate_limited_per_ip(settings, portal):
    import jwt as pyjwt

    from tests.kit.sign_in import SSO, portal_secret

    await fresh_window(900)
    for attempt in range(20):  # 20 addresses from one IP: each address far below its own limit
        assert (await portal.client.post(EMAIL_PATH, json={"email": f"ip{attempt}@example.com"})).status_code == 202
    limited = await portal.client.post(EMAIL_PATH, json={"email": "ip-next@example.com"})
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert count(settings.database_url("auth"), "users", "email = 'ip-next@example.com'") == 0

    secret, _ = await portal_secret(portal)
    await fresh_window(60, needed=30)
    statuses = []
    for attempt in range(121):  # 120 token logins a minute from one IP, spread over accounts
        token = pyjwt.encode({"email": f"t{attempt % 10}@example.com", "iat": int(time.time())}, secret,
                             algorithm="HS256")
        statuses.append((await portal.client.post(SSO, json={"token": token})).status_code)
    assert statuses[:120] == [200] * 120 and statuses[120] == 429


async def test_code_requests_take_as_long_for_new_and_known_addresses(settings, portal):
    """Creating an account is extra work; every answer waits for the same moment, so timing tells nothing."""
    import statistics

    import jwt as pyjwt

    from services.auth.email_access import EMAIL_START_SECONDS
    from tests.kit.sign_in import SSO, portal_secret

    secret, _ = await portal_secret(portal)
    for i in range(6):
        token = pyjwt.encode({"email": f"known{i}@example.com", "iat": int(time.time())}, secret, algorithm="HS256")
        assert (await portal.client.post(SSO, json={"token": token})).status_code == 200
    await fresh_window(15 * 60, needed=30)

    async def timed(email: str) -> float:
        async with httpx.AsyncClient(base_url=portal.base_url) as browser:
            started = time.perf_counter()
            response = await browser.post(EMAIL_PATH, json={"email": email})
            assert response.status_code == 202, response.text
            return time.perf_counter() - started

    known, new = [], []
    for i in range(6):  # interleaved, so that machine noise falls on both alike
        known.append(await timed(f"known{i}@example.com"))
        new.append(await timed(f"new{i}@example.com"))
    assert min(known + new) >= EMAIL_START_SECONDS
    assert abs(statistics.median(known) - statistics.median(new)) < 0.05, (known, new)
