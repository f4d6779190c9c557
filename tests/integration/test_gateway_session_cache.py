"""Sessions kept in each gateway (`services.gateway.auth.SessionCache`): an ended session is refused at once
on a gateway that kept it, and the idle-timeout touch still keeps an active session alive."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import nats
import pytest
import uvicorn
from fastapi import FastAPI

from contracts.sessions import SESSION_COOKIE, SessionRecord, session_key
from services.gateway.auth import KeptSession, SessionCache
from services.runtime.nats import free_port
from tests.helpers import wait_until
from tests.kit.seeding import seed
from tests.kit.sign_in import ADMIN, SSO, portal_secret, sign

PASSWORD = "a-long-staff-password"


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    seed(settings)
    secret, _ = await portal_secret(gateway)
    return {"secret": secret, "gateway": gateway, "settings": settings}


@asynccontextmanager
async def second_gateway(settings) -> AsyncIterator[tuple[str, FastAPI]]:  # type: ignore[no-untyped-def]
    """Another gateway replica in this process (its cache can be looked at): its base URL and app."""
    from services.gateway.app import create_app

    app, port = create_app(settings), free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on", proxy_headers=False))
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=10)
        await wait_until(lambda: app.state.session_cache._connection is not None, timeout=15)
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task


async def kept_on(app: FastAPI, token: str) -> KeptSession | None:
    cache: SessionCache = app.state.session_cache
    return dict(cache.entries()).get(session_key(token))


async def stored(settings, token: str) -> tuple[SessionRecord, int]:  # type: ignore[no-untyped-def]
    nc = await nats.connect(settings.nats_url)
    try:
        entry = await (await nc.jetstream().key_value("sessions")).get(session_key(token))
        return SessionRecord.model_validate_json(entry.value), entry.revision
    finally:
        await nc.close()


async def customer_token(demo, email: str) -> str:  # type: ignore[no-untyped-def]
    login = await demo["gateway"].client.post(SSO, json={"token": sign(demo["secret"], email=email)})
    assert login.status_code == 200, login.text
    return login.cookies[SESSION_COOKIE]


async def test_a_logout_is_refused_at_once_on_a_gateway_that_kept_the_session(demo):
    gateway, settings = demo["gateway"], demo["settings"]
    token = await customer_token(demo, "kept@example.com")
    async with second_gateway(settings) as (url, app), \
            httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: token}) as other, \
            httpx.AsyncClient(base_url=gateway.base_url, cookies={SESSION_COOKIE: token}) as first:
        for _ in range(2):
            assert (await other.get("/api/v1/session")).status_code == 200
        assert await kept_on(app, token) is not None
        logout = await first.delete("/api/v1/session")
        assert logout.json() == {"ended": True}
        # The very next request on the gateway that kept the session is refused.
        after = await other.get("/api/v1/session")
        assert after.status_code == 401 and after.json()["error"] == "unauthorized"
        assert await kept_on(app, token) is None


async def test_a_disabled_staff_member_is_refused_at_once_on_a_gateway_that_kept_the_session(demo):
    gateway, settings = demo["gateway"], demo["settings"]
    created = await gateway.client.post("/api/v1/admin/staff", headers=ADMIN, json={
        "email": "kept.agent@example.com", "role": "agent", "display_name": "Agent", "password": PASSWORD})
    assert created.status_code == 201, created.text
    member = created.json()["member"]
    async with httpx.AsyncClient(base_url=gateway.base_url) as browser:
        signed = await browser.post("/api/v1/staff/session", json={"email": "kept.agent@example.com",
                                                                    "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        token = browser.cookies[SESSION_COOKIE]
    async with second_gateway(settings) as (url, app), \
            httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: token}) as other:
        assert (await other.get("/api/v1/agent/conversations")).status_code == 200
        assert await kept_on(app, token) is not None
        disabled = await gateway.client.patch(f"/api/v1/admin/staff/{member['id']}", headers=ADMIN,
                                              json={"disabled": True})
        assert disabled.status_code == 200 and disabled.json()["sessions_ended"] == 1
        refused = await other.get("/api/v1/agent/conversations")
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert (await other.get("/api/v1/session")).status_code == 401


async def test_the_touch_keeps_a_kept_session_alive_on_every_gateway(demo, monkeypatch):
    gateway, settings = demo["gateway"], demo["settings"]
    monkeypatch.setattr("services.gateway.auth.TOUCH_EVERY", timedelta(0))  # every request is activity to record
    token = await customer_token(demo, "active@example.com")
    async with second_gateway(settings) as (url, _), \
            httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: token}) as other, \
            httpx.AsyncClient(base_url=gateway.base_url, cookies={SESSION_COOKIE: token}) as first:
        _, revision = await stored(settings, token)
        for _ in range(3):  # the gateway keeps the session and touches it at the revision it wrote last
            before = datetime.now(UTC)
            assert (await other.get("/api/v1/session")).status_code == 200
            record, now_at = await stored(settings, token)
            assert now_at > revision and record.last_seen_at >= before
            revision = now_at
        # Touched on the first gateway: what the second kept is older than the bucket's.
        assert (await first.get("/api/v1/session")).status_code == 200
        _, revision = await stored(settings, token)
        assert (await other.get("/api/v1/session")).status_code == 200  # its touch loses, and it reads again
        before = datetime.now(UTC)
        assert (await other.get("/api/v1/session")).status_code == 200
        record, now_at = await stored(settings, token)
        assert now_at > revision and record.last_seen_at >= before


async def test_a_kept_session_that_looks_idle_is_read_again_before_it_is_refused(demo):
    settings = demo["settings"]
    token = await customer_token(demo, "touched.elsewhere@example.com")
    async with second_gateway(settings) as (url, app), \
            httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: token}) as other:
        assert (await other.get("/api/v1/session")).status_code == 200
        cache: SessionCache = app.state.session_cache
        kept = await kept_on(app, token)
        assert kept is not None
        # As kept before another gateway's touches: three hours without a request (idle timeout: two).
        idle = kept.record.model_copy(update={"last_seen_at": datetime.now(UTC) - timedelta(hours=3)})
        cache.touched(session_key(token), KeptSession(idle, kept.revision), cache.generation)
        assert (await other.get("/api/v1/session")).status_code == 200
        fresh = await kept_on(app, token)
        assert fresh is not None and fresh.record.last_seen_at > idle.last_seen_at

        # Idle in the bucket too: refused.
        nc = await nats.connect(settings.nats_url)
        try:
            kv = await nc.jetstream().key_value("sessions")
            revision = await kv.put(session_key(token), idle.model_dump_json().encode())
        finally:
            await nc.close()
        cache.touched(session_key(token), KeptSession(idle, revision), cache.generation)
        assert (await other.get("/api/v1/session")).status_code == 401
