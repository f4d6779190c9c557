"""Two auth replicas, each keeping portals, secrets and live API keys in memory: a revoked or retired secret,
a sign-in method turned off, or a revoked or changed API key, is refused at once whichever replica answers
the next request."""

import asyncio
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from contracts.errors import ServiceError
from contracts.rpc import SsoLogin, VerifyApiKey
from services.auth import admin, caches, signin
from services.auth.domain import hash_api_key
from services.runtime.db import make_engine
from services.auth.app import build as build_auth
from services.runtime.nats import free_port
from tests.conftest import make_settings
from tests.helpers import wait_until
from tests.kit.seeding import seed
from tests.kit.sign_in import ADMIN, SSO, portal_secret, sign

TRIES = 24  # sign-ins after each change: both replicas answer some (each is picked at random)


@pytest.fixture
def settings(nats_server, databases, tmp_path):  # type: ignore[no-untyped-def]
    """As everywhere, but `X-Forwarded-For` is believed from 127.0.0.1: a test names the client's address."""
    return make_settings(nats_server.url, databases, tmp_path / "var", trusted_proxies="127.0.0.1")


@pytest.fixture
async def replicas(settings, stack, gateway, start_service):  # type: ignore[no-untyped-def]
    second = await start_service(build_auth, settings)
    seed(settings)
    secret, kid = await portal_secret(gateway)
    return {"replicas": [stack["auth"], second], "gateway": gateway, "secret": secret, "kid": kid,
            "settings": settings}


async def warm(replicas: list, secret: str) -> None:  # type: ignore[type-arg]
    """Each replica signs someone in with `secret`, so each holds the portal and its secrets in memory."""
    for i, replica in enumerate(replicas):
        opened = await signin.sso_login(replica, SsoLogin(portal="demo", token=sign(secret, email=f"w{i}@example.com")))
        assert opened.session.email == f"w{i}@example.com"
        assert "demo" in replica.resources["portals"]._known


async def refused_everywhere(demo: dict, token: str, error: str) -> None:
    gw = demo["gateway"]
    for _ in range(TRIES):
        response = await gw.client.post(SSO, json={"token": token})
        assert response.status_code != 200 and response.json()["error"] == error, response.text
    for replica in demo["replicas"]:  # and asked directly, once the change has certainly arrived
        with pytest.raises(ServiceError) as refused:
            await signin.sso_login(replica, SsoLogin(portal="demo", token=token))
        assert refused.value.code == error


async def test_a_revoked_secret_is_refused_at_once_by_every_replica(replicas):
    gw, secret, kid = replicas["gateway"], replicas["secret"], replicas["kid"]
    await warm(replicas["replicas"], secret)
    revoked = await gw.client.delete(f"/api/v1/admin/portals/demo/secrets/{kid}", headers=ADMIN)
    assert revoked.status_code == 200, revoked.text
    await refused_everywhere(replicas, sign(secret, email="late@example.com"), "bad_signature")


async def test_a_rotation_without_grace_is_seen_at_once_by_every_replica(replicas):
    gw, old = replicas["gateway"], replicas["secret"]
    await warm(replicas["replicas"], old)
    rotated = await gw.client.post("/api/v1/admin/portals/demo/secrets", headers=ADMIN, json={"grace_minutes": 0})
    assert rotated.status_code == 201, rotated.text
    await refused_everywhere(replicas, sign(old, email="late@example.com"), "bad_signature")
    new = sign(rotated.json()["secret"], email="new@example.com")
    for _ in range(TRIES):
        assert (await gw.client.post(SSO, json={"token": new})).status_code == 200


async def test_sso_turned_off_is_refused_at_once_by_every_replica(replicas):
    gw, secret = replicas["gateway"], replicas["secret"]
    await warm(replicas["replicas"], secret)
    changed = await gw.client.patch("/api/v1/admin/portals/demo/settings", headers=ADMIN, json={"sso_enabled": False})
    assert changed.status_code == 200, changed.text
    await refused_everywhere(replicas, sign(secret, email="late@example.com"), "method_disabled")


# -- API keys ----------------------------------------------------------------------------------------

PORTAL = "/api/v1/admin/portals/demo"
KEY_TRIES = 12  # fewer than the wrong keys an address may send before it must wait (20)


async def new_key(demo: dict, role: str = "org.admin") -> tuple[str, str]:  # type: ignore[type-arg]
    """A new API key, checked once by each replica so that each holds it in memory; (key, id)."""
    created = await demo["gateway"].client.post("/api/v1/admin/api-keys", headers=ADMIN, json={"name": "bot", "role": role})
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    for replica in demo["replicas"]:
        identity = await admin.verify_api_key(replica, VerifyApiKey(key=key, client_ip="192.0.2.1"))
        assert identity.key_id == key_id and identity.role == role
        kept = caches.api_keys(replica)._known
        assert hash_api_key(key) in kept and key not in kept  # kept by its hash, never the key
    return key, key_id


async def test_a_revoked_api_key_is_refused_at_once_by_every_replica(replicas):
    gw = replicas["gateway"]
    key, key_id = await new_key(replicas)
    mine = {"Authorization": f"Bearer {key}"}
    assert (await gw.client.get(PORTAL, headers=mine)).status_code == 200
    revoked = await gw.client.delete(f"/api/v1/admin/api-keys/{key_id}", headers=ADMIN)
    assert revoked.status_code == 200, revoked.text
    for _ in range(KEY_TRIES):
        refused = await gw.client.get(PORTAL, headers=mine)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized", refused.text
    for replica in replicas["replicas"]:
        assert hash_api_key(key) not in caches.api_keys(replica)._known
        with pytest.raises(ServiceError) as refused_here:
            await admin.verify_api_key(replica, VerifyApiKey(key=key, client_ip="192.0.2.1"))
        assert refused_here.value.code == "unauthorized"
    assert (await gw.client.get(PORTAL, headers=ADMIN)).status_code == 200  # other keys still work


async def test_a_changed_api_key_role_applies_at_once_on_every_replica(replicas):
    """A change to a key (here its role, written to the database) announced by one replica
    (`ApiKeyCache.changed`) is what every replica answers with next."""
    gw = replicas["gateway"]
    key, key_id = await new_key(replicas)
    engine = make_engine(replicas["settings"].database_url("auth"))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE api_keys SET role = 'org.read' WHERE id = :id"), {"id": key_id})
    finally:
        engine.dispose()
    await caches.api_keys(replicas["replicas"][1]).announce(key_id)
    for _ in range(TRIES):
        narrowed = await gw.client.get(PORTAL, headers={"Authorization": f"Bearer {key}"})
        assert narrowed.status_code == 403 and narrowed.json()["error"] == "forbidden", narrowed.text
    for replica in replicas["replicas"]:
        identity = await admin.verify_api_key(replica, VerifyApiKey(key=key, client_ip="192.0.2.1"))
        assert identity.role == "org.read"


async def test_a_kept_api_key_stops_at_its_expiry(replicas):
    from datetime import UTC, datetime, timedelta

    created = await replicas["gateway"].client.post("/api/v1/admin/api-keys", headers=ADMIN, json={
        "name": "brief", "role": "org.admin",
        "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    assert created.status_code == 201, created.text
    cache = caches.api_keys(replicas["replicas"][0])
    key_hash = hash_api_key(created.json()["key"])
    assert (await cache.get(key_hash)) is not None and key_hash in cache._known
    assert await cache.get(key_hash, now=datetime.now(UTC) + timedelta(hours=2)) is None


# -- API keys kept by the gateways -------------------------------------------------------------------

@asynccontextmanager
async def second_gateway(settings):  # type: ignore[no-untyped-def]
    """Another gateway replica on the same NATS: (its app, an HTTP client to it)."""
    from services.gateway.app import create_app

    app, port = create_app(settings), free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on", proxy_headers=False))
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await wait_until(lambda: server.started, timeout=10)
            await wait_until(lambda: app.state.api_keys._connection is not None, timeout=15)
            yield app, client
    finally:
        server.should_exit = True
        await task


def kept_by(app, key: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The entries a gateway keeps for `key` (by its hash and the client address, never the key)."""
    entries = [entry for entry, _ in app.state.api_keys.entries()]
    assert not any(key in entry for entry in entries)
    return [entry for entry in entries if entry.startswith(hash_api_key(key))]


async def test_a_revoked_api_key_is_refused_at_once_by_a_gateway_that_kept_it(replicas):
    gw, settings = replicas["gateway"], replicas["settings"]
    key, key_id = await new_key(replicas)
    mine = {"Authorization": f"Bearer {key}"}
    async with second_gateway(settings) as (app, other):
        for _ in range(3):  # the second request on each gateway is answered from what it kept
            assert (await gw.client.get(PORTAL, headers=mine)).status_code == 200
            assert (await other.get(PORTAL, headers=mine)).status_code == 200
        assert len(kept_by(app, key)) == 1
        revoked = await gw.client.delete(f"/api/v1/admin/api-keys/{key_id}", headers=ADMIN)
        assert revoked.status_code == 200, revoked.text
        assert kept_by(app, key) == []
        for _ in range(KEY_TRIES // 2):
            for client in (other, gw.client):
                refused = await client.get(PORTAL, headers=mine)
                assert refused.status_code == 401 and refused.json()["error"] == "unauthorized", refused.text
        assert (await other.get(PORTAL, headers=ADMIN)).status_code == 200  # other keys still work


async def test_wrong_keys_on_one_gateway_make_the_address_wait_on_another_that_kept_its_key(replicas):
    gw, settings = replicas["gateway"], replicas["settings"]
    key, _ = await new_key(replicas)
    mine, address = {"Authorization": f"Bearer {key}"}, {"X-Forwarded-For": "203.0.113.90"}
    async with second_gateway(settings) as (app, other):
        for _ in range(2):
            assert (await other.get(PORTAL, headers={**mine, **address})).status_code == 200
        assert len(kept_by(app, key)) == 1
        for i in range(20):
            wrong = await gw.client.get(PORTAL, headers={"Authorization": f"Bearer pk_guess_{i}", **address})
            assert wrong.status_code == 401, (i, wrong.text)
        assert kept_by(app, key) == []
        for client in (other, gw.client):
            limited = await client.get(PORTAL, headers={**mine, **address})
            assert limited.status_code == 429 and limited.json()["error"] == "rate_limited", limited.text
        assert (await other.get(PORTAL, headers={**mine, "X-Forwarded-For": "198.51.100.90"})).status_code == 200


async def test_a_gateway_stops_using_a_kept_key_at_its_expiry(replicas):
    from datetime import UTC, datetime, timedelta

    from contracts.rpc import ApiKeyIdentity
    from services.gateway.auth import ApiKeyCache

    created = await replicas["gateway"].client.post("/api/v1/admin/api-keys", headers=ADMIN, json={
        "name": "brief", "role": "org.admin", "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    assert created.status_code == 201, created.text
    identity = await admin.verify_api_key(replicas["replicas"][0], VerifyApiKey(key=created.json()["key"]))
    assert identity.expires_at is not None  # the gateway learns when to stop
    cache, asked = ApiKeyCache(), []
    cache._connection = replicas["replicas"][0].broker.connection  # as if listening

    async def auth_says(answer: ApiKeyIdentity):  # type: ignore[no-untyped-def]
        asked.append(answer)
        return answer

    past = identity.model_copy(update={"expires_at": datetime.now(UTC) - timedelta(seconds=1)})
    assert await cache.identity("pk_x", "192.0.2.1", lambda: auth_says(identity)) == identity
    assert await cache.identity("pk_x", "192.0.2.1", lambda: auth_says(identity)) == identity
    assert len(asked) == 1  # kept
    cache._known[next(iter(cache._known))] = (past, cache._known[next(iter(cache._known))][1])
    await cache.identity("pk_x", "192.0.2.1", lambda: auth_says(identity))
    assert len(asked) == 2  # expired: auth is asked again
