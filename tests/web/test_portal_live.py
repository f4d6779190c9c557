"""Live answers in a real browser: an agent's answer appears in the customer's open conversation page and
in My Conversations within 2 s, without a reload, and what the customer is typing stays."""

import time

from playwright.async_api import Page, expect

from contracts.sessions import SESSION_COOKIE
from tests.kit.browser import screenshots, serious_violations
from tests.kit.email import answer
from tests.kit.live import Stream


async def started(demo, **fields: str) -> str:  # type: ignore[no-untyped-def]
    """A conversation Ana starts, once the gateway has heard of it: a page loaded now starts after it."""
    async with Stream(demo.ana) as stream:
        return await stream.start(**fields)


async def signed_in_as_ana(demo, chromium) -> Page:  # type: ignore[no-untyped-def]
    """A browser page with Ana's session (signed in by SSO through the API)."""
    page = await chromium.page(demo.base_url)
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": demo.ana.cookies[SESSION_COOKIE],
                                     "url": demo.base_url}])
    return page


async def test_an_agent_answer_appears_in_the_open_conversation_without_a_reload(demo, chromium) -> None:
    cid = await started(demo, subject="Printer is offline", body="It says offline since Monday.")
    page = await signed_in_as_ana(demo, chromium)
    await page.goto(f"/portals/demo/conversations/{cid}")
    await expect(page.get_by_role("heading", name="Printer is offline")).to_be_visible()
    await page.evaluate("window.__kept = 1")
    composer = page.get_by_label("Your reply")
    await composer.fill("I am still typing this")

    began = time.monotonic()
    await answer(demo, cid, "Please switch it off and on again.")
    await expect(page.locator("#timeline").get_by_text("Please switch it off and on again.")).to_be_visible(
        timeout=2000)
    assert time.monotonic() - began < 2
    assert await page.evaluate("window.__kept") == 1  # the same page: no reload, no navigation
    await expect(composer).to_have_value("I am still typing this")
    await expect(page.locator("#live-status")).to_have_text("New activity in your conversations")

    await answer(demo, cid, "An internal note zebra", internal=True)
    await answer(demo, cid, "Did that help?")
    await expect(page.locator("#timeline").get_by_text("Did that help?")).to_be_visible(timeout=2000)
    await expect(page.get_by_text("zebra")).to_have_count(0)
    assert await page.evaluate("window.__kept") == 1
    assert await serious_violations(page) == []
    await screenshots(page, "conversation-live")


async def test_my_conversations_shows_a_new_answer_without_a_reload(demo, chromium) -> None:
    cid = await started(demo, subject="Invoice is wrong", body="Invoice 42 charges twice.")
    await started(demo, subject="Another question", body="Where is my parcel?")
    page = await signed_in_as_ana(demo, chromium)
    await page.goto("/portals/demo/conversations")
    items = page.locator("#conversation-list li")
    await expect(items.first).to_contain_text("Another question")
    await page.evaluate("window.__kept = 1")

    began = time.monotonic()
    await answer(demo, cid, "We refunded the second charge.")
    # The answered conversation moves to the top, with its new answer and the unread marker.
    await expect(items.first).to_contain_text("We refunded the second charge.", timeout=2000)
    assert time.monotonic() - began < 2
    await expect(items.first).to_contain_text("Invoice is wrong")
    await expect(items.first).to_contain_text("New answer")
    assert await page.evaluate("window.__kept") == 1
    assert await serious_violations(page) == []
    await screenshots(page, "conversations-live")


async def test_another_customers_answer_changes_nothing_on_the_page(demo, chromium) -> None:
    bob = await demo.customer("bob@example.com")
    async with Stream(bob) as stream:
        bob_cid = await stream.start(subject="Bob's")
    cid = await started(demo, subject="Mine")
    page = await signed_in_as_ana(demo, chromium)
    await page.goto("/portals/demo/conversations")
    await page.evaluate("""() => {
        window.__reads = 0;
        const read = window.fetch;
        window.fetch = (...args) => { window.__reads += 1; return read(...args); };
    }""")
    await answer(demo, bob_cid, "For Bob only")
    await answer(demo, cid, "For Ana")
    await expect(page.locator("#conversation-list")).to_contain_text("For Ana", timeout=2000)
    assert await page.evaluate("window.__reads") == 1  # Bob's answer did not even make the page read again
    await expect(page.get_by_text("For Bob only")).to_have_count(0)
