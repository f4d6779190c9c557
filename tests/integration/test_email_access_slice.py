"""The first vertical slice: e-mail access start through the gateway creates the customer in auth,
publishes UserRegistered, and conversations records the customer from the event."""



from contracts.events import UserRegistered
from tests.helpers import count, rows, wait_for_http, wait_until
from tests.kit.streams import stream_events
from tests.kit.seeding import EMAIL_PATH, seed


async def test_email_access_creates_customer_in_auth_and_conversations(settings, stack, gateway):
    seed(settings)
    response = await gateway.client.post(EMAIL_PATH, json={"email": "Ana.Silva@Example.COM"},
                                         headers={"X-Request-Id": "req-slice-1"})
    assert response.status_code == 202, response.text
    assert response.json() == {"portal": "demo", "status": "pending_verification"}
    assert response.headers["X-Request-Id"] == "req-slice-1"

    auth_db, conv_db = settings.database_url("auth"), settings.database_url("conversations")
    assert rows(auth_db, "SELECT email, kind FROM users WHERE email = :e", e="ana.silva@example.com") == [
        ("ana.silva@example.com", "customer")]
    await wait_until(lambda: count(conv_db, "customers", "email = :e", e="ana.silva@example.com") == 1)

    # The event carries the request's correlation id from HTTP through RPC into the stream.
    events = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
              if e.data["email"] == "ana.silva@example.com"]
    assert len(events) == 1
    assert events[0].correlation_id == "req-slice-1"
    assert events[0].type == "UserRegistered" and events[0].version == 1 and events[0].aggregate_version == 1


async def test_repeated_email_access_reuses_the_account(settings, stack, gateway):
    seed(settings)
    for _ in range(3):
        response = await gateway.client.post(EMAIL_PATH, json={"email": "bo@example.com"})
        assert response.status_code == 202
    auth_db, conv_db = settings.database_url("auth"), settings.database_url("conversations")
    assert count(auth_db, "users", "email = 'bo@example.com'") == 1
    await wait_until(lambda: count(conv_db, "customers", "email = 'bo@example.com'") == 1)
    events = [e for e in await stream_events(settings.nats_url, UserRegistered.subject())
              if e.data["email"] == "bo@example.com"]
    assert len(events) == 1


async def test_bad_input_gets_a_json_error_and_stores_nothing(settings, stack, gateway):
    seed(settings)
    auth_db = settings.database_url("auth")
    users_before, outbox_before = count(auth_db, "users"), count(auth_db, "outbox")
    cases = [
        ("/api/v1/portals/nope/session/email", {"json": {"email": "a@example.com"}}, 404, "unknown_portal"),
        (EMAIL_PATH, {"json": {"email": "not-an-email"}}, 422, "invalid_email"),
        (EMAIL_PATH, {"json": {"email": ""}}, 422, "invalid_email"),
        (EMAIL_PATH, {"json": {}}, 422, "invalid_request"),
        (EMAIL_PATH, {"json": {"email": 12}}, 422, "invalid_request"),
        (EMAIL_PATH, {"json": {"email": "x" * 400 + "@example.com"}}, 422, "invalid_request"),
        (EMAIL_PATH, {"content": b"{\"email\":", "headers": {"content-type": "application/json"}}, 422,
         "invalid_request"),
        ("/api/v1/no/such/route", {"json": {}}, 404, "not_found"),
    ]
    for path, kwargs, status, code in cases:
        response = await gateway.client.post(path, **kwargs)
        assert response.status_code == status, (path, kwargs, response.text)
        body = response.json()
        assert body["error"] == code and body["message"], body
    response = await gateway.client.get(EMAIL_PATH)
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert count(auth_db, "users") == users_before
    assert count(auth_db, "outbox") == outbox_before


async def test_disabled_email_access_is_refused(settings, stack, gateway):
    seed(settings)
    auth_db = settings.database_url("auth")
    from sqlalchemy import text

    from services.runtime.db import make_engine
    engine = make_engine(auth_db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE portals SET email_access_enabled = false WHERE slug = 'demo'"))
    engine.dispose()
    users_before = count(auth_db, "users")
    response = await gateway.client.post(EMAIL_PATH, json={"email": "c@example.com"})
    assert response.status_code == 403 and response.json()["error"] == "method_disabled"
    assert count(auth_db, "users") == users_before


async def test_healthz_and_readyz_report_each_service(settings, stack, gateway):
    health = await gateway.client.get("/healthz")
    assert health.status_code == 200 and health.json()["nats"] == "connected"
    ready = await wait_for_http(gateway, "/readyz", 200)
    services = ready.json()["services"]
    assert set(services) == {"auth", "conversations", "notifications", "kb"}
    assert all(s["status"] == "ok" and s["database"] == "ok" for s in services.values())

    await stack["kb"].stop()
    not_ready = await gateway.client.get("/readyz")
    assert not_ready.status_code == 503
    body = not_ready.json()
    assert body["services"]["kb"] == {"status": "down", "error": "service_unavailable",
                                      "message": body["services"]["kb"]["message"]}
    assert body["services"]["auth"]["status"] == "ok"


async def test_service_down_gives_503_not_a_timeout(settings, start_service, gateway):
    seed(settings)
    response = await gateway.client.post(EMAIL_PATH, json={"email": "d@example.com"})
    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable"
    assert count(settings.database_url("auth"), "users", "email = 'd@example.com'") == 0


async def test_openapi_lists_the_public_paths(gateway):
    spec = (await gateway.client.get("/openapi.json")).json()
    assert {"/healthz", "/readyz", "/api/v1/portals/{portal}/session/email"} <= set(spec["paths"])
