"""The chat widget's sessions in a Chromium that blocks third-party cookies, on sites other than Portico's:
`sso.login` keeps what the visitor wrote before (and waits for a new account to reach every service),
its refusals carry the server's code, `sso.logout` ends the session on every gateway, and a site that
is not allowed can neither show the widget nor talk to it.
"""

import asyncio
import time

import httpx
from playwright.async_api import expect

from tests.helpers import rows
from tests.kit.browser import screenshots
from tests.kit.email import answer, demo, settings, sink  # noqa: F401  (fixtures)
from tests.kit.mail import eventually
from tests.kit.widget import (  # noqa: F401  (fixtures)
    BUTTON_NAME,
    PANEL,
    another_gateway,
    ask,
    frame_of,
    link_gate,
    open_panel,
    sites,
    stack,
    strict,
    token,
)

LOGIN = "t => PorticoChat.sso.login(t).then(() => ({ok: true}), e => ({code: e.code, message: e.message, " \
        "error: e instanceof Error, name: e.name}))"


async def test_login_refusals_carry_the_server_code_and_login_before_init_waits(demo, sites, strict) -> None:
    page = await strict.page(sites.lab)
    await page.goto("/blank")
    # Called before `init`: it waits for the panel instead of failing.
    early = await page.evaluate("t => { var p = PorticoChat.sso.login(t); PorticoChat.init({portal: 'demo'}); "
                                "return p.then(() => PorticoChat.isLoggedIn()); }", token(demo.secret, "eve@example.com"))
    assert early is True

    expired = await page.evaluate(LOGIN, token(demo.secret, "eve@example.com", exp=int(time.time()) - 60))
    assert expired["code"] == "token_expired" and expired["error"] and expired["name"] == "PorticoChatError"
    assert "expired" in expired["message"].lower(), expired
    wrong = await page.evaluate(LOGIN, token("not-the-portal-secret-at-all-0123456789", "eve@example.com"))
    assert wrong["code"] == "bad_signature" and wrong["message"], wrong
    once = token(demo.secret, "eve@example.com", jti="the-same-jti")
    assert await page.evaluate(LOGIN, once) == {"ok": True}
    replayed = await page.evaluate(LOGIN, once)
    assert replayed["code"] == "token_replayed" and replayed["message"], replayed
    nothing = await page.evaluate(LOGIN, "")
    assert nothing["code"] == "invalid_token" and nothing["error"]
    assert await page.evaluate("PorticoChat.isLoggedIn()") is True  # refusals left the session as it was


async def test_anonymous_chat_then_sso_login_belongs_to_the_new_customer_without_a_hitch(
        demo, sites, strict, settings, link_gate) -> None:
    page = await strict.page(sites.shop)
    await page.goto("/")
    panel = await open_panel(page)
    await ask(panel, "my refund is lost")
    await panel.get_by_role("button", name="No, I need a person").click()
    await panel.get_by_role("button", name="Continue without e-mail").click()
    await expect(panel.get_by_text("You are now talking with the support team.", exact=False)).to_be_visible()
    await panel.get_by_label("Your message").fill("Order 77, paid twice")
    await panel.get_by_label("Your message").press("Enter")
    await expect(panel.locator(".entry.visitor").get_by_text("Order 77, paid twice")).to_be_visible()
    chats = (await demo.agent.get("/api/v1/agent/conversations", params={"channel": "chat"})).json()["conversations"]
    assert len(chats) == 1, chats
    cid, anonymous_id = chats[0]["id"], chats[0]["customer_id"]

    # A first login for an address with no account, while the linking is still on its way to the
    # conversations service: the login answers once it has arrived, and nothing in the panel fails.
    link_gate.open.clear()
    await page.evaluate("t => { window.loginDone = null; PorticoChat.sso.login(t).then(() => { window.loginDone = "
                        "'ok'; }, e => { window.loginDone = e.code; }); }",
                        token(demo.secret, "dora@example.com", displayName="Dora"))
    auth_db = settings.database_url("auth")
    await eventually(lambda: rows(auth_db, "SELECT id FROM users WHERE email = 'dora@example.com'"))
    assert await asyncio.to_thread(link_gate.waiting.wait, 15)  # the linking reached the gate
    assert await page.evaluate("window.loginDone") is None  # still waiting for the history
    link_gate.open.set()
    await page.wait_for_function("window.loginDone !== null")
    assert await page.evaluate("window.loginDone") == "ok"
    assert await page.evaluate("PorticoChat.isLoggedIn()") is True
    await expect(panel.locator("#who")).to_have_text("Signed in as Dora")
    await expect(panel.locator(".entry.visitor").get_by_text("Order 77, paid twice")).to_be_visible()
    assert await panel.locator(".entry.problem").count() == 0
    await expect(panel.get_by_text("no longer available", exact=False)).to_have_count(0)

    dora = rows(auth_db, "SELECT id FROM users WHERE email = 'dora@example.com'")[0][0]
    detail = (await demo.agent.get(f"/api/v1/agent/conversations/{cid}")).json()
    assert detail["conversation"]["customer_id"] == dora
    assert {"user_id": anonymous_id, "role": "participant"} in [
        {"user_id": p["user_id"], "role": p["role"]} for p in detail["participants"]], detail["participants"]
    # The customer goes on in the same chat, and the agent's answer reaches the signed-in panel live.
    await answer(demo, cid, "Refunded the second payment, Dora.")
    await expect(panel.locator(".entry.agent").get_by_text("Refunded the second payment, Dora.")).to_be_visible()
    await screenshots(page, "widget-signed-in")


async def test_logout_ends_the_session_on_every_gateway_and_the_panel_says_so(demo, sites, strict, settings) -> None:
    page = await strict.page(sites.shop)
    await page.goto("/")
    await page.get_by_label("E-mail").fill("finn@example.com")
    await page.get_by_label("Name").fill("Finn")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_text("Logged in as finn@example.com")).to_be_visible()
    # The shop's own script signs the chat in with a token from the shop's backend.
    await page.wait_for_function("PorticoChat.isLoggedIn()")
    await page.evaluate("window.events = []; void PorticoChat.on('logout', () => window.events.push('logout'))")
    panel = await open_panel(page)
    await expect(panel.locator("#who")).to_have_text("Signed in as Finn")
    session_token = await frame_of(page).evaluate("PorticoFrame.session.token")  # only a test looks inside
    assert session_token.startswith("ps_")

    async with another_gateway(settings) as second:
        bearer = {"Authorization": f"Bearer {session_token}"}
        async with httpx.AsyncClient(base_url=second) as other:
            assert (await other.get("/api/v1/session", headers=bearer)).json()["email"] == "finn@example.com"
            await page.evaluate("PorticoChat.sso.logout()")
            assert (await other.get("/api/v1/session", headers=bearer)).status_code == 401
        async with httpx.AsyncClient(base_url=demo.base_url) as first:
            assert (await first.get("/api/v1/session", headers=bearer)).status_code == 401
    assert await page.evaluate("PorticoChat.isLoggedIn()") is False
    assert await page.evaluate("window.events") == ["logout"]
    await expect(panel.locator("#who")).to_have_text("Not signed in")
    await expect(panel.get_by_text("You are signed out.", exact=False)).to_be_visible()
    assert await frame_of(page).evaluate("PorticoFrame.session.token") is None


async def test_a_site_not_allowed_can_neither_show_the_widget_nor_talk_to_it(demo, sites, strict) -> None:
    allowed = await strict.page(sites.lab)
    await allowed.goto(f"/embed?host={sites.lab}")  # the same page on an allowed site shows the panel
    await expect(allowed.frame_locator("#f").locator("#composer")).to_be_visible()
    page = await strict.page(sites.evil)
    for host, status in ((sites.evil, 403), (sites.shop, 200)):  # its own origin, or pretending to be the shop
        async with page.expect_response(lambda r: "/widget/frame" in r.url) as answered:
            await page.goto(f"/embed?host={host}")  # waits for the frame's load too
        response = await answered.value
        policy = (await response.all_headers())["content-security-policy"]
        assert response.status == status and "frame-ancestors 'self'" in policy and sites.shop in policy
        assert sites.evil not in policy
        # The browser shows nothing of it: not the panel, and not even the refusal.
        await expect(page.frame_locator("#f").locator("#composer")).to_have_count(0)
        await expect(page.frame_locator("#f").locator("#refused")).to_have_count(0)

    # A page of the evil site inside the shop's page writes to the widget: ignored, and never answered.
    shop = await strict.page(sites.shop)
    await shop.goto("/")
    await shop.get_by_role("button", name=BUTTON_NAME).wait_for()
    assert await shop.evaluate(LOGIN, token(demo.secret, "gus@example.com")) == {"ok": True}
    frame = frame_of(shop)
    before = await frame.evaluate("PorticoFrame.session.token")
    # Listeners run in the order they were added: once this one has seen the messages, the widget's has too.
    await frame.evaluate("window.seen = []; window.addEventListener('message', e => window.seen.push(e.origin))")
    await shop.evaluate("o => { var f = document.createElement('iframe'); f.id = 'intruder'; f.title = 'x'; "
                        "f.src = o + '/intruder'; document.body.appendChild(f); }", sites.evil)
    await expect(shop.frame_locator("#intruder").locator("#sent")).to_have_text("sent")
    await frame.wait_for_function("window.seen.length >= 2")
    assert set(await frame.evaluate("window.seen")) == {sites.evil}
    assert await frame.evaluate("PorticoFrame.session.token") == before
    async with httpx.AsyncClient(base_url=demo.base_url) as client:
        who = await client.get("/api/v1/session", headers={"Authorization": f"Bearer {before}"})
        assert who.status_code == 200 and who.json()["email"] == "gus@example.com"
    assert await shop.evaluate("PorticoChat.isLoggedIn()") is True
    await expect(shop.frame_locator("#intruder").locator("#heard")).to_have_text("")
    await expect(shop.locator(PANEL)).to_be_hidden()
