"""The agent inbox in a real browser: filters (status, channel, assignee), search, paging, the unread marker,
a customer's new message arriving live, and who may open the agent workspace at all."""

import re
import time

from playwright.async_api import Page, expect

from contracts.sessions import SESSION_COOKIE
from tests.kit.browser import no_horizontal_scroll, screenshots, serious_violations
from tests.kit.channels import channel_secret, deliver, message
from tests.kit.console import staff_browser
from tests.kit.conversations import start

INBOX = "/api/v1/agent/conversations"


def titles(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#inbox-list .item-title")


async def test_filters_search_and_the_unread_marker(demo, chromium) -> None:
    bob = await demo.customer("bob@example.com")
    me = (await demo.agent.get("/api/v1/session")).json()["user_id"]
    printer = (await start(demo.ana, subject="Printer offline", body="It blinks orange."))["id"]
    invoice = (await start(bob, subject="Invoice is wrong", body="Charged twice."))["id"]
    password = (await start(demo.ana, subject="Password reset", body="The link expired."))["id"]
    secret = await channel_secret(demo)
    chat = (await deliver(demo, "chat", secret["org_id"], secret["secret"],
                          message(email="wanda@example.com", subject="Chat about shipping")))["conversation_id"]
    assert (await demo.agent.post(f"{INBOX}/{invoice}/close")).status_code == 200
    assert (await demo.agent.post(f"{INBOX}/{password}/assign", json={"assignee_id": me})).status_code == 200

    page = await staff_browser(chromium, demo)
    await expect(titles(page)).to_have_text(["Password reset", "Chat about shipping", "Printer offline"])
    await expect(page.locator(f"#inbox-{chat} .badge.channel")).to_have_text("Chat")
    await expect(page.locator(f"#inbox-{password}")).to_contain_text("Assigned to you")

    await page.get_by_label("Status").select_option("closed")
    await page.get_by_role("button", name="Show").click()
    await expect(titles(page)).to_have_text(["Invoice is wrong"])
    await expect(page).to_have_url(re.compile(r"status=closed"))
    await page.get_by_label("Status").select_option("all")
    await page.get_by_label("Assignee").select_option("mine")
    await page.get_by_role("button", name="Show").click()
    await expect(titles(page)).to_have_text(["Password reset"])
    await page.get_by_label("Assignee").select_option("unassigned")
    await page.get_by_label("Channel").select_option("chat")
    await page.get_by_role("button", name="Show").click()
    await expect(titles(page)).to_have_text(["Chat about shipping"])
    await page.get_by_role("link", name="Clear the filters").click()
    await expect(titles(page)).to_have_count(3)

    await page.get_by_label("Search").fill("orange")  # words of a message
    await page.get_by_role("button", name="Show").click()
    await expect(titles(page)).to_have_text(["Printer offline"])
    await page.get_by_label("Search").fill("bob@example")
    await page.get_by_label("Status").select_option("all")
    await page.get_by_role("button", name="Show").click()
    await expect(titles(page)).to_have_text(["Invoice is wrong"])
    assert await serious_violations(page) == []
    await page.get_by_label("Search").fill("nothing like this")
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("heading", name="No conversations match")).to_be_visible()
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await no_horizontal_scroll(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await screenshots(page, "agent-inbox-no-match")

    # Opening a conversation reads it: its marker goes; the others keep theirs.
    await page.goto("/agent/")
    await expect(page.locator(f"#inbox-{printer} .badge.unread")).to_be_visible()
    await page.get_by_role("link", name="Printer offline").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Printer offline")
    await page.get_by_role("link", name="Back to the inbox").click()
    await expect(page.locator(f"#inbox-{printer} .badge.unread")).to_have_count(0)
    await expect(page.locator(f"#inbox-{chat} .badge.unread")).to_be_visible()

    # A new message of the customer brings the conversation to the top, unread again, without a reload.
    await page.evaluate("window.__kept = 1")
    started = time.monotonic()
    posted = await demo.ana.post(f"/api/v1/portals/demo/conversations/{printer}/messages",
                                 json={"body": "Now it blinks red."})
    assert posted.status_code == 201
    await expect(titles(page).first).to_have_text("Printer offline", timeout=2000)
    await expect(page.locator(f"#inbox-{printer}")).to_contain_text("Now it blinks red.", timeout=2000)
    await expect(page.locator(f"#inbox-{printer} .badge.unread")).to_be_visible(timeout=2000)
    assert time.monotonic() - started < 2
    assert await page.evaluate("window.__kept") == 1

    # The customer's other conversations, from a conversation page.
    await page.goto(f"/agent/conversations/{printer}")
    others = page.locator("#customer .others")
    await expect(others.get_by_role("link")).to_have_text(["Password reset"])
    await page.get_by_role("link", name="All their conversations").click()
    await expect(titles(page)).to_have_text(["Printer offline", "Password reset"])
    await expect(page.locator(".filter-note")).to_contain_text("ana@example.com")


async def test_paging_through_the_inbox(demo, chromium) -> None:
    for n in range(27):
        await start(demo.ana, subject=f"Question {n:02d}", body="Hello")
    page = await staff_browser(chromium, demo, javascript=False)
    await expect(titles(page)).to_have_count(25)
    await expect(titles(page).first).to_have_text("Question 26")
    await page.get_by_role("link", name="Older conversations").click()
    await expect(titles(page)).to_have_text(["Question 01", "Question 00"])
    await expect(page.get_by_role("link", name="Older conversations")).to_have_count(0)
    await page.get_by_role("link", name="First page").click()
    await expect(titles(page).first).to_have_text("Question 26")


async def test_only_agents_and_admins_open_the_workspace(demo, chromium) -> None:
    # Signed out: the staff sign-in, then back.
    page = await chromium.page(demo.base_url)
    await page.goto("/agent/")
    await expect(page).to_have_url(re.compile(r"/agent/login\?next=/agent/"))

    # A customer's cookie: 403, the page and the stream.
    customer = await chromium.page(demo.base_url)
    await customer.context.add_cookies([{"name": SESSION_COOKIE, "value": demo.ana.cookies[SESSION_COOKIE],
                                         "url": demo.base_url}])
    response = await customer.goto("/agent/")
    assert response is not None and response.status == 403
    await expect(customer.get_by_role("heading", name="No access")).to_be_visible()
    cid = (await start(demo.ana))["id"]
    response = await customer.goto(f"/agent/conversations/{cid}")
    assert response is not None and response.status == 403
    stream = await demo.ana.get("/api/v1/agent/events", headers={"Accept": "text/event-stream"})
    assert stream.status_code == 403 and stream.json()["error"] == "forbidden"
    posted = await demo.ana.post(f"/agent/conversations/{cid}/close", headers={"Origin": demo.base_url})
    assert posted.status_code == 403
    assert (await demo.agent.get(f"{INBOX}/{cid}")).json()["conversation"]["status"] == "open"

    # A content manager reads the knowledge base, not conversations: signing in lands there.
    writer = await staff_browser(chromium, demo, "writer@example.com", "content_manager")
    await expect(writer).to_have_url(re.compile(r"/agent/kb$"))
    await expect(writer.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox")).to_have_count(0)
    response = await writer.goto(f"/agent/conversations/{cid}")
    assert response is not None and response.status == 403
    await expect(writer.get_by_role("heading", name="No access")).to_be_visible()
    assert await serious_violations(writer) == []
    await screenshots(writer, "agent-conversation-forbidden")
