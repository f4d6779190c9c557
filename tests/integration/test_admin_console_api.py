"""The admin API the console's settings pages use: the portal list, the chat widget's allowed origins,
and staff accounts' roles and disabling (which end the member's open sessions at once)."""

import httpx
import pytest

from tests.helpers import rows
from tests.kit.seeding import seed
from tests.kit.sign_in import ADMIN

SETTINGS = "/api/v1/admin/portals/demo/settings"
PASSWORD = "a-long-staff-password"


@pytest.fixture
async def gw(settings, stack, gateway):  # type: ignore[no-untyped-def]
    seed(settings)
    return gateway


def client(gw) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(base_url=gw.base_url, timeout=10)


async def staff(gw, email: str, role: str) -> dict:  # type: ignore[no-untyped-def]
    created = await gw.client.post("/api/v1/admin/staff", headers=ADMIN, json={
        "email": email, "role": role, "display_name": role.title(), "password": PASSWORD})
    assert created.status_code == 201, created.text
    return created.json()["member"]


async def signed_in(gw, email: str, password: str = PASSWORD) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    browser = client(gw)
    response = await browser.post("/api/v1/staff/session", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return browser


async def test_widget_origins_are_kept_normalised_and_bad_ones_change_nothing(gw, settings):
    response = await gw.client.patch(SETTINGS, headers=ADMIN, json={"widget_origins": [
        "https://Shop.Example.com:443", "https://shop.example.com/", "http://localhost:5173",
        "https://bücher.example", "https://app.example.com:8443"]})
    assert response.status_code == 200, response.text
    kept = ["https://shop.example.com", "http://localhost:5173", "https://xn--bcher-kva.example",
            "https://app.example.com:8443"]
    assert response.json()["settings"]["widget_origins"] == kept
    assert (await gw.client.get("/api/v1/admin/portals/demo", headers=ADMIN)).json()["settings"]["widget_origins"] \
        == kept

    refusals = {
        "https://shop.example.com/help": "has a path",
        "http://shop.example.com": "uses http",
        "shop.example.com": "is not an origin",
        "https://*.example.com": "wildcard",
        "https://user@shop.example.com": "user name",
        "https://shop.example.com:99999": "port",
        "https://shop.example.com?x=1": "query",
    }
    for bad, words in refusals.items():
        refused = await gw.client.patch(SETTINGS, headers=ADMIN, json={
            "widget_origins": ["https://ok.example.com", bad], "session_lifetime_hours": 5})
        assert refused.status_code == 422, (bad, refused.text)
        body = refused.json()
        assert body["error"] == "invalid_setting" and body["message"].startswith("widget_origins: "), body
        assert words in body["message"] and bad in body["message"], body
    too_many = await gw.client.patch(SETTINGS, headers=ADMIN, json={
        "widget_origins": [f"https://s{n}.example.com" for n in range(51)]})
    assert too_many.status_code == 422 and "At most 50 origins" in too_many.json()["message"]
    fifty = await gw.client.patch(SETTINGS, headers=ADMIN, json={
        "widget_origins": [f"https://s{n}.example.com" for n in range(50)]})
    assert fifty.status_code == 200 and len(fifty.json()["settings"]["widget_origins"]) == 50
    cleared = await gw.client.patch(SETTINGS, headers=ADMIN, json={"widget_origins": []})
    assert cleared.json()["settings"]["widget_origins"] == []
    # The refusals above stored nothing, not even the other setting sent beside the bad origin.
    assert rows(settings.database_url("auth"), "SELECT session_lifetime_hours FROM portals WHERE slug = 'demo'") \
        == [(24,)]


async def test_settings_refusals_name_their_field(gw):
    for field, value in (("session_lifetime_hours", 0), ("idle_timeout_minutes", 1),
                         ("sso_token_max_age_minutes", 61), ("custom_sign_on_redirect_uri", "http://x.example")):
        refused = await gw.client.patch(SETTINGS, headers=ADMIN, json={field: value})
        assert refused.status_code == 422 and refused.json()["message"].startswith(f"{field}: "), refused.text


async def test_staff_may_list_the_portals_and_customers_may_not(gw):
    listed = await gw.client.get("/api/v1/admin/portals", headers=ADMIN)
    assert listed.status_code == 200 and {"slug": "demo", "name": "Demo support"} in listed.json()["portals"]
    await staff(gw, "writer@example.com", "content_manager")
    writer = await signed_in(gw, "writer@example.com")
    assert [p["slug"] for p in (await writer.get("/api/v1/admin/portals")).json()["portals"]] == ["demo"]
    assert (await client(gw).get("/api/v1/admin/portals")).status_code == 401


async def test_a_new_role_ends_the_members_sessions_and_the_next_one_has_it(gw):
    agent = await staff(gw, "moved@example.com", "agent")
    first, second = await signed_in(gw, "moved@example.com"), await signed_in(gw, "moved@example.com")
    changed = await gw.client.patch(f"/api/v1/admin/staff/{agent['id']}", headers=ADMIN,
                                    json={"role": "content_manager"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["member"]["role"] == "content_manager" and changed.json()["sessions_ended"] == 2
    for browser in (first, second):
        assert (await browser.get("/api/v1/session")).status_code == 401
    again = await signed_in(gw, "moved@example.com")
    assert (await again.get("/api/v1/session")).json()["role"] == "content_manager"
    listed = (await gw.client.get("/api/v1/admin/staff", headers=ADMIN)).json()["staff"]
    assert {"id": agent["id"], "email": "moved@example.com", "display_name": "Agent", "role": "content_manager",
            "disabled": False} in listed


async def test_a_disabled_member_is_signed_out_and_cannot_sign_in_until_enabled(gw):
    agent = await staff(gw, "leaver@example.com", "agent")
    browser = await signed_in(gw, "leaver@example.com")
    disabled = await gw.client.patch(f"/api/v1/admin/staff/{agent['id']}", headers=ADMIN, json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["member"]["disabled"] is True
    assert disabled.json()["sessions_ended"] == 1
    assert (await browser.get("/api/v1/agent/conversations")).status_code == 401
    refused = await client(gw).post("/api/v1/staff/session", json={"email": "leaver@example.com",
                                                                    "password": PASSWORD})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_credentials"
    enabled = await gw.client.patch(f"/api/v1/admin/staff/{agent['id']}", headers=ADMIN, json={"disabled": False})
    assert enabled.json()["member"]["disabled"] is False
    await signed_in(gw, "leaver@example.com")


async def test_the_org_keeps_an_enabled_admin_and_only_admins_change_staff(gw):
    listed = (await gw.client.get("/api/v1/admin/staff", headers=ADMIN)).json()["staff"]
    only_admin = next(m for m in listed if m["email"] == "admin@example.com")
    for change in ({"role": "agent"}, {"disabled": True}):
        refused = await gw.client.patch(f"/api/v1/admin/staff/{only_admin['id']}", headers=ADMIN, json=change)
        assert refused.status_code == 409 and refused.json()["error"] == "conflict", refused.text
    assert (await signed_in(gw, "admin@example.com", "a-long-admin-password")) is not None

    agent = await staff(gw, "plain@example.com", "agent")
    as_agent = await signed_in(gw, "plain@example.com")
    forbidden = await as_agent.patch(f"/api/v1/admin/staff/{agent['id']}", json={"role": "admin"})
    assert forbidden.status_code == 403
    missing = await gw.client.patch("/api/v1/admin/staff/01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=ADMIN,
                                    json={"role": "agent"})
    assert missing.status_code == 404
    unknown_role = await gw.client.patch(f"/api/v1/admin/staff/{agent['id']}", headers=ADMIN, json={"role": "owner"})
    assert unknown_role.status_code == 422

    second = await staff(gw, "second.admin@example.com", "admin")
    demoted = await gw.client.patch(f"/api/v1/admin/staff/{only_admin['id']}", headers=ADMIN, json={"role": "agent"})
    assert demoted.status_code == 200 and demoted.json()["member"]["role"] == "agent"
    last = await gw.client.patch(f"/api/v1/admin/staff/{second['id']}", headers=ADMIN, json={"disabled": True})
    assert last.status_code == 409
