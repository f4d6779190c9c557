"""A secret rotated in the admin console signs the chat widget's visitors in: `sso.login(token)` on the
company's own site works with the new secret and, during the grace period, with the old one; after
the old one is revoked, the widget's login rejects it with the server's code."""

from playwright.async_api import expect

from tests.kit.console import admin_browser
from tests.kit.widget import sites, strict, token  # noqa: F401  (fixtures)

LOGIN = "t => PorticoChat.sso.login(t).then(() => 'ok', e => e.code)"


async def test_the_widget_signs_in_with_the_rotated_secret_and_the_old_one_during_the_grace_period(
        demo, chromium, sites, strict) -> None:
    admin = await admin_browser(chromium, demo, next_path="/admin/portals/demo/secrets")
    portal = (await demo.admin.get("/api/v1/admin/portals/demo")).json()
    old_kid = [s["kid"] for s in portal["secrets"] if s["live"]][-1]
    await admin.get_by_label("Grace period (minutes)").fill("90")
    await admin.get_by_role("button", name="Make a new secret").click()
    shown = admin.get_by_label("Secret", exact=True)
    await expect(shown).to_have_attribute("readonly", "")
    new_secret = await shown.input_value()
    assert new_secret and new_secret != demo.secret

    shop = await strict.page(sites.lab)  # the company's site, another origin than Portico's
    await shop.goto("/blank")
    await shop.evaluate("PorticoChat.init({portal: 'demo'})")
    assert await shop.evaluate(LOGIN, token(new_secret, "new-secret@example.com")) == "ok"
    assert await shop.evaluate("PorticoChat.sso.logout().then(() => PorticoChat.isLoggedIn())") is False
    assert await shop.evaluate(LOGIN, token(demo.secret, "old-secret@example.com")) == "ok"  # the grace period

    await admin.goto("/admin/portals/demo/secrets")
    await admin.get_by_role("link", name=f"Revoke {old_kid}").click()
    await admin.get_by_role("button", name="Revoke now").click()
    await expect(admin.locator(f"#secret-{old_kid}")).to_contain_text("Revoked")
    await shop.evaluate("PorticoChat.sso.logout()")
    assert await shop.evaluate(LOGIN, token(demo.secret, "after-revoke@example.com")) == "bad_signature"
