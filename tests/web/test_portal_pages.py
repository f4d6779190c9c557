"""Every customer page in every state, in a real Chromium against a running Portico: signed out (home,
sign-in and its refusals, staff sign-in, the knowledge base, the error pages), as a customer (My
Conversations with items, empty, filtered; a conversation open, with files, with a redacted message,
closed under each reopen policy, its follow-up; a new conversation) and as staff (internal articles).

Each page answers with the status it should, a strict Content-Security-Policy that Chromium reports no
violation of, exactly one `h1` and a `lang`; it has no serious or critical axe-core violation, fits a
375 px wide phone without scrolling sideways, and is saved as `pages-<name>-{desktop,phone}.png`."""

from dataclasses import dataclass, field

from playwright.async_api import Page, expect

from tests.fixtures.files import sample
from tests.kit.browser import DESKTOP, PHONE, no_horizontal_scroll, screenshots, serious_violations
from tests.kit.conversations import closed_days_ago, start
from tests.kit.email import answer
from tests.kit.uploads import upload
from tests.kit.portal import INTERNAL, library, sign_in_staff, signed_in, strict_csp, Watch


@dataclass
class Walk:
    """One browser page walking the portal; `check` proves what every page must hold."""

    page: Page
    watch: Watch
    seen: list[str] = field(default_factory=list)

    async def visit(self, name: str, path: str, status: int = 200, shows: str | None = None) -> None:
        response = await self.page.goto(path)
        assert response is not None and response.status == status, (name, response and response.status)
        strict_csp(response)
        await self.check(name, shows)

    async def check(self, name: str, shows: str | None = None) -> None:
        """The page as it is now: `shows` is a text it must show (its state)."""
        page = self.page
        if shows:
            await expect(page.locator("main"), name).to_contain_text(shows)
        assert await page.evaluate("document.documentElement.lang") in ("en", "de"), name
        assert await page.locator("h1").count() == 1, name
        assert await serious_violations(page) == [], name
        await page.set_viewport_size(PHONE)
        assert await no_horizontal_scroll(page), f"{name} scrolls sideways at {PHONE['width']} px"
        await page.set_viewport_size(DESKTOP)
        assert self.watch.violations == [], (name, self.watch.violations)
        await screenshots(page, f"pages-{name}")
        self.seen.append(name)


async def walk(chromium, demo, client=None) -> Walk:  # type: ignore[no-untyped-def]
    page = await signed_in(chromium, demo, client) if client else await chromium.page(demo.base_url)
    return Walk(page, Watch(page))


async def test_every_page_signed_out(demo, sink, chromium) -> None:
    await library(demo)
    w = await walk(chromium, demo)
    await w.visit("home", "/portals/demo/", shows="How can we help?")
    await w.visit("home-de", "/portals/demo/?lang=de")
    await w.visit("login", "/portals/demo/login?lang=en&next=/portals/demo/conversations", shows="E-mail address")

    page = w.page
    await page.get_by_label("E-mail address").fill("not an address")
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Continue", exact=True).click()
    assert (await sent.value).status == 422
    await w.check("login-email-refused", shows="Please enter a valid e-mail address")
    await page.get_by_label("E-mail address").fill("sam@example.com")
    await page.get_by_role("button", name="Continue", exact=True).click()
    await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    await w.check("login-code", shows="We sent a code to sam@example.com")
    await page.get_by_label("Code", exact=True).fill("000000")
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Sign in", exact=True).click()
    assert (await sent.value).status == 401
    await w.check("login-code-wrong", shows="That code is not right.")
    await page.context.clear_cookies()

    await w.visit("login-staff", "/portals/demo/login/staff", shows="For the support team.")
    await w.visit("kb", "/portals/demo/kb", shows="Categories")
    await w.visit("kb-category", "/portals/demo/kb?category=billing", shows="Where is my invoice?")
    await w.visit("kb-search", "/portals/demo/kb?q=password", shows="Reset your password")
    await w.visit("kb-did-you-mean", "/portals/demo/kb?q=pasword&category=billing", shows="Did you mean password?")
    await w.visit("kb-no-result", "/portals/demo/kb?q=xylophone", shows="No articles match “xylophone”.")
    await w.visit("kb-article", "/portals/demo/kb/reset-your-password", shows="Forgot your password?")
    await w.visit("kb-missing", f"/portals/demo/kb/{INTERNAL}", 404, shows="Article not found")
    await w.visit("not-found", "/portals/demo/no-such-page", 404, shows="We could not find that page.")
    await w.visit("no-portal", "/portals/nope/", 404, shows="There is no such help centre.")
    assert len(w.seen) == 16


async def test_every_page_of_a_customer(demo, chromium) -> None:
    # The window is set before the portal's pages first read it (the gateway keeps a portal 2 s).
    await demo.settings_(reopen_enabled=True, reopen_policy="within_days", reopen_within_days=7,
                         detail_attributes=[{"attribute": "custom.order_number", "display_name": "Order number"}])
    w = await walk(chromium, demo, demo.ana)
    await w.visit("home-customer", "/portals/demo/", shows="See my conversations")
    await w.visit("login-signed-in", "/portals/demo/login", shows="You are signed in as ana")
    await w.visit("conversations-empty", "/portals/demo/conversations", shows="No conversations yet")
    await w.visit("conversation-new", "/portals/demo/conversations/new", shows="Tell us what you need.")

    started = await demo.ana.post("/api/v1/portals/demo/conversations", data={
        "subject": "Scanner makes stripes on every page", "body": "Scans attached.\nThe first and the last."},
        files=upload(("first-scan.png", sample("png")), ("a-rather-long-file-name-of-the-last-scan-2026.pdf",
                                                          sample("pdf"))))
    assert started.status_code == 201, started.text
    files = started.json()["conversation"]["id"]
    await answer(demo, files, "Please clean the glass, then scan a white page and send it to us.")

    redacted = (await start(demo.ana, subject="Card payment failed", body="My card is 4111 1111 1111 1111"))["id"]
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{redacted}/attributes",
                                  json={"values": {"order_number": "A-77"}})).status_code == 200
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{redacted}/subject",
                                  json={"subject": "Card payment for order A-77 failed"})).status_code == 200
    first = next(m for m in (await demo.agent.get(f"/api/v1/agent/conversations/{redacted}")).json()["messages"]
                 if m["kind"] == "message")
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{redacted}/messages/{first['id']}/redact")
            ).status_code == 200

    late = (await start(demo.ana, subject="Closed long ago"))["id"]
    closed = (await start(demo.ana, subject="Closed last week", body="Thanks, that solved it."))["id"]
    for cid in (late, closed):
        assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    closed_days_ago(demo, late, 10)

    await w.visit("conversations", "/portals/demo/conversations", shows="New answer")
    await w.visit("conversations-closed", "/portals/demo/conversations?status=closed", shows="Closed long ago")
    await w.visit("conversations-no-match", "/portals/demo/conversations?q=xylophone", shows="No conversation matches")
    await w.visit("conversation-files", f"/portals/demo/conversations/{files}", shows="first-scan.png")
    await w.visit("conversation-redacted", f"/portals/demo/conversations/{redacted}",
                  shows="This message was redacted.")
    await w.visit("conversation-window-passed", f"/portals/demo/conversations/{late}",
                  shows="can no longer be reopened")
    await w.visit("conversation-closed-within-days", f"/portals/demo/conversations/{closed}",
                  shows="you can reopen it")
    await demo.settings_(reopen_policy="always")
    await w.visit("conversation-closed-always", f"/portals/demo/conversations/{late}", shows="you can reopen it")
    await demo.settings_(reopen_enabled=False)
    await w.visit("conversation-closed-reopen-off", f"/portals/demo/conversations/{late}",
                  shows="Closed conversations cannot be reopened in this help centre.")
    await demo.settings_(reopen_enabled=True, reopen_policy="new_conversation")
    await w.visit("conversation-closed-follow-up", f"/portals/demo/conversations/{closed}",
                  shows="You can start a follow-up")
    await w.page.get_by_role("button", name="Start a follow-up").click()
    await expect(w.page.get_by_role("link", name="See the earlier conversation").first).to_be_visible()
    await w.check("conversation-follow-up", shows="This conversation continues an earlier one.")
    await w.visit("conversation-missing", "/portals/demo/conversations/01ZZZZZZZZZZZZZZZZZZZZZZZZ", 404)

    await demo.settings_(my_conversations_enabled=False)
    await w.visit("conversations-off", "/portals/demo/conversations", 403,
                  shows="Conversations are not shown in this help centre.")
    assert len(w.seen) == 17


async def test_every_page_of_staff_on_the_portal(demo, chromium) -> None:
    await library(demo)
    page = await chromium.page(demo.base_url)
    await sign_in_staff(page, demo, "agent.pages@example.com", "agent")
    w = Walk(page, Watch(page))
    await w.visit("home-staff", "/portals/demo/", shows="Internal")
    await w.visit("kb-staff", "/portals/demo/kb", shows="Internal: issuing a goodwill credit")
    await w.visit("kb-article-internal", f"/portals/demo/kb/{INTERNAL}", shows="Only staff see internal articles")
    await w.visit("conversations-staff", "/portals/demo/conversations", 403,
                  shows="You do not have access to this page.")
    assert len(w.seen) == 4
