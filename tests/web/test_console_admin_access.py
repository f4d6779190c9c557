"""The admin console's secrets, API keys and staff pages in a real browser against a running Portico: a
rotated secret is shown once, and SSO works with it and, during the grace period, with the old one until it
is revoked; an API key is shown once, works, and stops when revoked; staff are added (a made-up password shown
once), sign in, get a new role and are disabled; the organisation keeps an enabled admin."""

import re

import httpx
from playwright.async_api import expect

from tests.kit.browser import checked, serious_violations
from tests.kit.console import DEMO_ADMIN as ADMIN_EMAIL, admin_browser, sign_in_staff
from tests.kit.sign_in import SSO, sign


async def sso(demo, secret: str, email: str = "rotated@example.com") -> int:  # type: ignore[no-untyped-def]
    """The status of an SSO sign-in with a token signed by `secret`."""
    async with demo.browser() as browser:
        return (await browser.post(SSO, json={"token": sign(secret, email=email)})).status_code


async def test_a_rotated_secret_is_shown_once_and_the_old_one_works_until_revoked(demo, chromium) -> None:
    portal = (await demo.admin.get("/api/v1/admin/portals/demo")).json()
    old_kid = [s["kid"] for s in portal["secrets"] if s["live"]][-1]
    page = await admin_browser(chromium, demo, next_path="/admin/portals/demo/secrets")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Secrets of Demo support")
    await expect(page.get_by_label("Settings URL")).to_have_value(
        f"{demo.base_url}/v1/auth/kb/{portal['kb_id']}/settings")
    assert demo.secret not in await page.content()
    await checked(page, "admin-secrets")

    await page.get_by_label("Grace period (minutes)").fill("90")
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Make a new secret").click()
    assert (await sent.value).status == 200 and page.url == f"{demo.base_url}/admin/portals/demo/secrets"  # type: ignore[union-attr]
    shown = page.get_by_label("Secret", exact=True)
    await expect(shown).to_have_attribute("readonly", "")
    new_secret = await shown.input_value()
    assert len(new_secret) >= 32 and new_secret != demo.secret and new_secret not in page.url
    await expect(page.locator("#new-secret")).to_contain_text("shown only this once")
    await expect(page.locator(f"#secret-{old_kid}")).to_contain_text("Works until")
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.locator("#new-secret").get_by_role("button", name="Copy").click()
    await expect(page.locator("#new-secret-value-status")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == new_secret
    await checked(page, "admin-secrets-rotated")

    assert await sso(demo, new_secret) == 200
    assert await sso(demo, demo.secret, "grace@example.com") == 200  # the grace period
    await page.goto("/admin/portals/demo/secrets")
    assert new_secret not in await page.content()  # shown once

    await page.get_by_role("link", name=f"Revoke {old_kid}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Revoke the secret {old_kid}?")
    await checked(page, "admin-secrets-revoke")
    await page.get_by_role("button", name="Revoke now").click()
    await expect(page.locator("#secrets-notice")).to_have_text("The secret was revoked.")
    await expect(page.locator(f"#secret-{old_kid}")).to_contain_text("Revoked")
    assert await sso(demo, demo.secret, "late@example.com") == 401
    assert await sso(demo, new_secret, "still@example.com") == 200


async def test_an_api_key_is_shown_once_works_and_stops_when_revoked(demo, chromium) -> None:
    page = await admin_browser(chromium, demo, next_path="/admin/api-keys")
    await expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    await checked(page, "admin-keys")

    await page.get_by_role("button", name="Make the key").click()  # no name
    await expect(page.locator("#f-name-error")).to_contain_text("Give the key a name")
    await page.get_by_label("Name", exact=True).fill("CRM sync")
    await page.get_by_label("Expires on (optional)").fill("2001-01-01")
    await page.get_by_role("button", name="Make the key").click()
    await expect(page.locator("#f-expires_on-error")).to_contain_text("a date in the future")
    await expect(page.get_by_label("Name", exact=True)).to_have_value("CRM sync")
    await page.get_by_label("Expires on (optional)").fill("")
    await page.get_by_label("org.admin").check()
    await page.get_by_role("button", name="Make the key").click()
    key = await page.get_by_label("API key", exact=True).input_value()
    assert key and key not in page.url
    await checked(page, "admin-keys-created")

    async with httpx.AsyncClient(base_url=demo.base_url, headers={"Authorization": f"Bearer {key}"}) as system:
        assert (await system.get("/api/v1/admin/portals/demo")).status_code == 200
        await page.goto("/admin/api-keys")
        assert key not in await page.content()
        row = page.locator("#keys-table tr", has_text="CRM sync")
        await expect(row).to_contain_text(key[:8])
        await row.get_by_role("link", name="Revoke CRM sync").click()
        await checked(page, "admin-keys-revoke")
        await page.get_by_role("button", name="Revoke now").click()
        await expect(page.locator("#keys-notice")).to_have_text("The API key was revoked.")
        await expect(page.locator("#keys-table tr", has_text="CRM sync")).to_contain_text("Revoked")
        assert (await system.get("/api/v1/admin/portals/demo")).status_code == 401


async def test_staff_are_added_with_a_role_changed_and_disabled(demo, chromium) -> None:
    page = await admin_browser(chromium, demo, next_path="/admin/staff")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Staff")
    await checked(page, "admin-staff")

    await page.get_by_label("E-mail").fill("not an address")
    await page.get_by_label("Password (optional)").fill("short")
    await page.get_by_role("button", name="Add the staff member").click()
    await expect(page.locator("#f-email-error")).to_contain_text("Enter an e-mail address")
    await expect(page.locator("#f-password-error")).to_contain_text("at least 12 characters")
    await expect(page.get_by_label("E-mail")).to_have_value("not an address")
    await expect(page.get_by_label("Password (optional)")).to_have_value("")

    await page.get_by_label("E-mail").fill("new.agent@example.com")
    await page.get_by_label("Name (optional)").fill("New Agent")
    await page.get_by_role("button", name="Add the staff member").click()  # the password made up and shown
    password = await page.get_by_label("Password", exact=True).input_value()
    assert len(password) >= 12 and password not in page.url
    await checked(page, "admin-staff-created")

    agent = await chromium.page(demo.base_url)
    await sign_in_staff(agent, "new.agent@example.com", password)
    await expect(agent).to_have_url(re.compile(r"/agent/$"))
    await expect(agent.locator("header .who")).to_contain_text("New Agent")

    await page.goto("/admin/staff")
    await page.get_by_label("Role of new.agent@example.com").select_option("content_manager")
    await page.get_by_role("button", name="Change role new.agent@example.com").click()
    await expect(page.locator("#staff-notice")).to_contain_text("The role was changed")
    await agent.goto("/agent/")  # their session ended with the change
    await expect(agent).to_have_url(re.compile(r"/agent/login"))

    await page.get_by_role("button", name="Disable new.agent@example.com").click()
    await expect(page.locator("#staff-notice")).to_contain_text("The account was disabled")
    await expect(page.get_by_role("button", name="Enable new.agent@example.com")).to_be_visible()
    await agent.get_by_label("E-mail").fill("new.agent@example.com")
    await agent.get_by_label("Password").fill(password)
    await agent.get_by_role("button", name="Sign in").click()
    await expect(agent.locator("#login-error")).to_be_visible()

    # The organisation keeps an enabled admin: the words next to that member.
    members = (await demo.admin.get("/api/v1/admin/staff")).json()["staff"]
    me = next(m for m in members if m["email"] == ADMIN_EMAIL)
    await page.get_by_role("button", name=f"Disable {ADMIN_EMAIL}").click()
    await expect(page.locator(f"#staff-{me['id']}-error")).to_contain_text("needs an enabled admin")
    assert await serious_violations(page) == []


async def test_a_rotation_form_sent_twice_makes_one_new_secret(demo, chromium) -> None:
    """A reload of the page that shows a new secret sends its form again: refused, nothing more made, so
    the secret the admin was just shown stays the newest."""
    before = len((await demo.admin.get("/api/v1/admin/portals/demo")).json()["secrets"])
    page = await admin_browser(chromium, demo, next_path="/admin/portals/demo/secrets")
    form = {"grace_minutes": "60", "replaces": await page.locator("input[name=replaces]").input_value()}
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=demo.base_url, cookies=cookies, headers={"Accept": "text/html"}) as admin:
        first = await admin.post("/admin/portals/demo/secrets", data=form)
        again = await admin.post("/admin/portals/demo/secrets", data=form)
    assert first.status_code == 200 and 'id="new-secret-value"' in first.text
    assert again.status_code == 409 and "already sent" in again.text and 'id="new-secret-value"' not in again.text
    secrets = (await demo.admin.get("/api/v1/admin/portals/demo")).json()["secrets"]
    assert len(secrets) == before + 1
