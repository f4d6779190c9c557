"""The admin console's portal settings in a real browser against a running Portico: an admin turns
reopening off and the customer's conversation page stops offering it; each section saves on its own (with
JavaScript off); bad inputs are refused next to their field with what was typed kept and nothing stored;
who may open the admin pages. Secrets, API keys and staff: test_console_admin_access.py."""

import re

from playwright.async_api import expect

from tests.kit.browser import checked, serious_violations
from tests.helpers import table_counts
from tests.kit.console import admin_browser, browser_with_cookies, sign_in_staff
from tests.kit.conversations import start

SETTINGS = "/admin/portals/demo/settings"


async def test_an_admin_turns_reopening_off_and_the_customer_portal_stops_offering_it(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Closed and done"))["id"]
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    customer = await browser_with_cookies(chromium, demo, demo.ana)
    await customer.goto(f"/portals/demo/conversations/{cid}")
    state = customer.locator("#conversation-state")
    await expect(state.get_by_role("button", name="Reopen this conversation")).to_be_visible()

    page = await admin_browser(chromium, demo)
    await expect(page).to_have_url(re.compile(r"/admin/$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Admin")
    for link in ("Settings Demo support", "Secrets Demo support", "Articles Demo support", "Theme Demo support",
                 "Staff", "API keys", "Operations"):
        await expect(page.get_by_role("link", name=link, exact=True)).to_be_visible()
    await checked(page, "admin-home")

    await page.get_by_role("link", name="Settings Demo support").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Settings of Demo support")
    reopen = page.get_by_label("Customers may reopen closed conversations")
    await expect(reopen).to_be_checked()
    await checked(page, "admin-settings")
    await reopen.uncheck()
    await page.get_by_role("button", name="Save Conversations").click()
    await expect(page).to_have_url(re.compile(r"/admin/portals/demo/settings\?saved=conversations#conversations$"))
    await expect(page.locator("#conversations-saved")).to_have_text("Saved.")
    await expect(page.get_by_label("Customers may reopen closed conversations")).not_to_be_checked()
    await expect(page.get_by_label("Show My Conversations")).to_be_checked()

    config = (await demo.ana.get("/api/v1/portals/demo/config")).json()
    assert config["switches"]["reopen"] is False and config["switches"]["my_conversations"] is True
    await customer.reload()
    await expect(state).to_contain_text("Closed conversations cannot be reopened in this help centre.")
    await expect(state.get_by_role("button")).to_have_count(0)


async def test_every_section_saves_on_its_own_with_javascript_off(demo, chromium) -> None:
    page = await admin_browser(chromium, demo, next_path=SETTINGS, javascript=False)
    await page.get_by_label("Session lifetime (hours)").fill("48")
    await page.get_by_label("Idle timeout (minutes)").fill("30")
    await page.get_by_role("button", name="Save Sessions").click()
    await expect(page.locator("#sessions-saved")).to_have_text("Saved.")

    await page.get_by_label("Custom sign-on Redirect URI").fill("https://login.example.com/portico")
    await page.get_by_label("Without signing in").uncheck()
    await page.get_by_role("button", name="Save Sign-in").click()
    await expect(page.locator("#sign-in-saved")).to_be_visible()

    await page.locator("#f-attribute-0").fill("custom.order_number")
    await page.locator("#f-display_name-0").fill("Order number")
    await page.locator("#f-attribute-1").fill("assignee")
    await page.locator("#f-display_name-1").fill("Handled by")
    await page.get_by_role("button", name="Save Details shown to customers").click()
    await expect(page.locator("#details-saved")).to_be_visible()
    await expect(page.locator("#f-display_name-0")).to_have_value("Order number")

    await page.get_by_label("Largest file (MB)").fill("2.5")
    await page.get_by_label("Files a message may carry").fill("3")
    await page.get_by_role("button", name="Save Message and file limits").click()
    await expect(page.locator("#limits-saved")).to_be_visible()

    await page.get_by_label("Sites that may embed the chat widget").fill(
        "https://Shop.Example.com\nhttp://localhost:5173\n")
    await page.get_by_role("button", name="Save Chat widget").click()
    await expect(page.get_by_label("Sites that may embed the chat widget")).to_have_value(
        "https://shop.example.com\nhttp://localhost:5173")

    await page.get_by_label("Show only internal articles").check()
    await page.get_by_role("button", name="Save Knowledge base").click()
    await expect(page.locator("#knowledge-base-saved")).to_be_visible()

    portal = (await demo.admin.get("/api/v1/admin/portals/demo")).json()["settings"]
    assert portal["session_lifetime_hours"] == 48 and portal["idle_timeout_minutes"] == 30
    assert portal["custom_sign_on_redirect_uri"] == "https://login.example.com/portico"
    assert portal["anonymous_enabled"] is False and portal["sso_enabled"] is True
    assert portal["widget_origins"] == ["https://shop.example.com", "http://localhost:5173"]
    conversation = (await demo.admin.get("/api/v1/admin/portals/demo/conversation-settings")).json()
    assert conversation["detail_attributes"] == [{"attribute": "custom.order_number", "display_name": "Order number"},
                                                 {"attribute": "assignee", "display_name": "Handled by"}]
    assert conversation["max_file_bytes"] == int(2.5 * 1024 * 1024) and conversation["max_files"] == 3
    switches = (await demo.admin.get("/api/v1/admin/portals/demo/kb/settings")).json()
    assert switches["show_only_internal"] is True


async def test_bad_inputs_are_refused_next_to_the_field_and_change_nothing(demo, chromium) -> None:
    page = await admin_browser(chromium, demo, next_path=SETTINGS)
    before = {service: table_counts(demo.settings.database_url(service)) for service in ("auth", "conversations")}
    stored = (await demo.admin.get("/api/v1/admin/portals/demo")).json()["settings"]
    limits = (await demo.admin.get("/api/v1/admin/portals/demo/conversation-settings")).json()

    # A Redirect URI that is not https, beside a change that must not be stored either.
    await page.get_by_label("Custom sign-on Redirect URI").fill("http://login.example.com/sso")
    await page.get_by_label("E-mail access").uncheck()
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Save Sign-in").click()
    assert (await sent.value).status == 422  # type: ignore[union-attr]
    uri = page.get_by_label("Custom sign-on Redirect URI")
    await expect(uri).to_have_value("http://login.example.com/sso")
    await expect(uri).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-custom_sign_on_redirect_uri-error")).to_contain_text("must be an https:// URL")
    await expect(page.get_by_label("E-mail access")).not_to_be_checked()  # as typed, not as stored
    await expect(page.locator("#error-summary")).to_contain_text("must be an https:// URL")
    await checked(page, "admin-settings-refused")

    # A negative limit, and a size that is no number.
    await page.goto(SETTINGS)
    await page.get_by_label("Files a message may carry").fill("-1")
    await page.get_by_label("Largest file (MB)").fill("lots")
    await page.get_by_role("button", name="Save Message and file limits").click()
    await expect(page.locator("#f-max_files-error")).to_have_text("Error: Enter a whole number from 0 to 20.")
    await expect(page.locator("#f-max_file_mb-error")).to_contain_text("Enter a size in MB, more than 0 and at most 25")
    await expect(page.get_by_label("Files a message may carry")).to_have_value("-1")
    await expect(page.get_by_label("Files a message may carry")).to_have_attribute(
        "aria-describedby", "f-max_files-error f-max_files-hint")

    # An origin with a path: the service's words, naming it.
    await page.goto(SETTINGS)
    origins = "https://shop.example.com\nhttps://shop.example.com/help"
    await page.get_by_label("Sites that may embed the chat widget").fill(origins)
    await page.get_by_role("button", name="Save Chat widget").click()
    await expect(page.locator("#f-widget_origins-error")).to_contain_text(
        "'https://shop.example.com/help' has a path, query or fragment")
    await expect(page.get_by_label("Sites that may embed the chat widget")).to_have_value(origins)

    # A detail attribute that is not one, and a name left out.
    await page.goto(SETTINGS)
    await page.locator("#f-attribute-0").fill("order number")
    await page.locator("#f-display_name-0").fill("Order")
    await page.locator("#f-attribute-2").fill("reference")
    await page.get_by_role("button", name="Save Details shown to customers").click()
    await expect(page.locator("#f-attribute-0-error")).to_contain_text("like custom.order_number")
    await expect(page.locator("#f-display_name-2-error")).to_have_text("Error: Fill this in.")
    await expect(page.locator("#f-attribute-2")).to_have_value("reference")
    assert await serious_violations(page) == []

    # Sessions: not a number.
    await page.goto(SETTINGS)
    await page.get_by_label("Session lifetime (hours)").fill("a day")
    await page.get_by_role("button", name="Save Sessions").click()
    await expect(page.locator("#f-session_lifetime_hours-error")).to_contain_text("Enter a whole number")

    assert (await demo.admin.get("/api/v1/admin/portals/demo")).json()["settings"] == stored
    assert (await demo.admin.get("/api/v1/admin/portals/demo/conversation-settings")).json() == limits
    assert {service: table_counts(demo.settings.database_url(service))
            for service in ("auth", "conversations")} == before


async def test_who_may_open_the_admin_pages(demo, chromium) -> None:
    pages = (SETTINGS, "/admin/portals/demo/secrets", "/admin/api-keys", "/admin/staff")
    customer = await browser_with_cookies(chromium, demo, demo.ana)
    for path in ("/admin/", *pages):
        response = await customer.goto(path)
        assert response is not None and response.status == 403, path
    await expect(customer.get_by_role("heading", level=1)).to_have_text("No access")

    agent = await chromium.page(demo.base_url)
    await sign_in_staff(agent, "agent@example.com")
    for path in ("/admin/", *pages):
        response = await agent.goto(path)
        assert response is not None and response.status == 403, path
    refused = await demo.agent.post("/admin/portals/demo/settings/conversations", data={"reopen_enabled": "on"},
                                    headers={"Origin": demo.base_url})
    assert refused.status_code == 403

    await demo.staff("writer@example.com", "content_manager")
    writer = await chromium.page(demo.base_url)
    await sign_in_staff(writer, "writer@example.com", next_path="/admin/")
    await expect(writer.get_by_role("link", name="Articles Demo support")).to_be_visible()
    await expect(writer.get_by_role("link", name="Theme Demo support")).to_be_visible()
    for hidden in ("Settings Demo support", "Secrets Demo support", "Staff", "API keys"):
        await expect(writer.get_by_role("link", name=hidden, exact=True)).to_have_count(0)
    await checked(writer, "admin-home-content-manager")
    for path in pages:
        response = await writer.goto(path)
        assert response is not None and response.status == 403, path

    nobody = await chromium.page(demo.base_url)
    await nobody.goto("/admin/api-keys")
    await expect(nobody).to_have_url(re.compile(r"/agent/login\?next=/admin/api-keys$"))
