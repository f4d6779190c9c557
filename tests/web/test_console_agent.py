"""The agent workspace in a real browser against a running Portico: a customer's new conversation arrives in
the inbox live; the agent answers with a file and adds an internal note, which the customer never sees;
redaction behind a confirmation that says the text is erased for good; the warning when the customer
writes while the agent types; the main flows with JavaScript off; who may open the workspace."""

import re
import time

import httpx
from playwright.async_api import Page, expect

from contracts.sessions import SESSION_COOKIE
from tests.kit.browser import checked, screenshots, serious_violations
from tests.fixtures.files import sample
from tests.kit.console import staff_browser
from tests.kit.conversations import start

CONVERSATION_URL = re.compile(r"/agent/conversations/([0-9A-Z]{26})(#.*)?$")


async def customer_page(chromium, demo, client: httpx.AsyncClient | None = None) -> Page:  # type: ignore[no-untyped-def]
    """A browser page with the customer's session (Ana's by default)."""
    page = await chromium.page(demo.base_url)
    client = client or demo.ana
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": client.cookies[SESSION_COOKIE],
                                     "url": demo.base_url}])
    return page


async def customer_view(demo, cid: str) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.ana.get(f"/api/v1/portals/demo/conversations/{cid}")
    assert response.status_code == 200, response.text
    return response.json()["conversation"]


async def test_a_new_conversation_arrives_live_and_is_answered_with_a_file_and_a_note(demo, chromium) -> None:
    page = await staff_browser(chromium, demo)
    await expect(page).to_have_url(re.compile(r"/agent/$"))
    await expect(page.get_by_role("heading", name="No open conversations")).to_be_visible()
    await checked(page, "agent-inbox-empty")
    await page.evaluate("window.__kept = 1")

    started = time.monotonic()
    cid = (await start(demo.ana, subject="The printer prints blank pages",
                       body="Since Monday every page is blank. My card is 4111 1111 1111 1111."))["id"]
    row = page.locator(f"#inbox-{cid}")
    await expect(row).to_be_visible(timeout=2000)
    assert time.monotonic() - started < 2
    assert await page.evaluate("window.__kept") == 1  # no reload
    await expect(row.get_by_text("Unread")).to_be_visible()
    await expect(row.get_by_text("Awaiting answer")).to_be_visible()
    await expect(row).to_contain_text("ana@example.com")
    await expect(row).to_contain_text("Since Monday every page is blank.")
    await checked(page, "agent-inbox")

    await row.get_by_role("link", name="The printer prints blank pages").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    await expect(page.get_by_role("heading", level=1)).to_have_text("The printer prints blank pages")
    timeline = page.locator("#timeline")
    await expect(timeline.locator(".message.from-customer")).to_contain_text("Since Monday every page is blank.")
    await expect(page.locator("#customer")).to_contain_text("ana@example.com")
    await checked(page, "agent-conversation")

    await page.get_by_label("Answer to the customer").fill("Please try the cleaning cycle.\nThe manual is attached.")
    await page.locator("#reply-files").set_input_files(
        [{"name": "manual.png", "mimeType": "image/png", "buffer": sample("png")}])
    await page.get_by_role("button", name="Send answer").click()
    answer = timeline.locator(".message.from-agent")
    await expect(answer).to_contain_text("Please try the cleaning cycle.")
    await expect(answer.get_by_text("Answer to the customer")).to_be_visible()
    download = answer.get_by_role("link", name="manual.png")
    file = await page.request.get(await download.get_attribute("href") or "")
    assert file.status == 200 and await file.body() == sample("png")

    await page.get_by_role("textbox", name="Internal note").fill("Customer sounds annoyed; check the warranty.")
    await page.get_by_role("button", name="Add internal note").click()
    note = timeline.locator(".message.note")
    await expect(note).to_contain_text("Customer sounds annoyed; check the warranty.")
    await expect(note.locator(".badge")).to_have_text("Internal note")
    await expect(note.get_by_text("Only staff see this.")).to_be_visible()
    # Never confusable: a note is not styled as an answer, and an answer never says "Internal note".
    assert await note.evaluate("e => getComputedStyle(e).backgroundColor") != \
        await answer.evaluate("e => getComputedStyle(e).backgroundColor")
    await expect(answer.get_by_text("Internal note")).to_have_count(0)
    await checked(page, "agent-conversation-answered")

    # The customer's portal page shows the answer and its file, never the note.
    customer = await customer_page(chromium, demo)
    await customer.goto(f"/portals/demo/conversations/{cid}")
    await expect(customer.locator("#timeline")).to_contain_text("Please try the cleaning cycle.")
    await expect(customer.locator("#timeline").get_by_role("link", name="manual.png")).to_be_visible()
    assert "warranty" not in await customer.content()
    assert "warranty" not in str(await customer_view(demo, cid))

    # Redaction: a dialog says the text is erased for good; cancelling keeps it.
    first = timeline.locator(".message.from-customer").first
    await first.get_by_role("link", name="Redact this message").click()
    dialog = page.get_by_role("dialog", name="Erase this message for good?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("erased for good")
    await expect(dialog).to_contain_text("4111")
    assert await serious_violations(page) == []
    await screenshots(page, "agent-redact-dialog")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(first).to_contain_text("4111")
    await first.get_by_role("link", name="Redact this message").click()
    await dialog.get_by_role("button", name="Erase for good").click()
    await expect(timeline.locator(".message.from-customer").first).to_contain_text("This message was redacted")
    assert "4111" not in await page.content()
    # The customer sees it redacted, live on the page they have open.
    await expect(customer.locator("#timeline")).to_contain_text("This message was redacted.")
    assert "4111" not in await customer.content()
    redacted = next(m for m in (await customer_view(demo, cid))["messages"] if m["author_kind"] == "customer")
    assert redacted["redacted"] is True and redacted["body"] is None


async def test_a_customer_message_that_arrives_while_the_agent_types_is_warned_of(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Parcel is late", body="Where is my parcel?"))["id"]

    # Without JavaScript: the server stops the answer once, keeps the text, and offers "Send anyway".
    page = await staff_browser(chromium, demo, javascript=False)
    await page.goto(f"/agent/conversations/{cid}")
    await page.get_by_label("Answer to the customer").fill("It left our warehouse yesterday.")
    later = await demo.ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages",
                                json={"body": "Never mind, it just arrived!"})
    assert later.status_code == 201
    await page.get_by_role("button", name="Send answer").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "A new message from the customer arrived while you were writing")
    await expect(page.locator("#timeline")).to_contain_text("Never mind, it just arrived!")
    await expect(page.get_by_label("Answer to the customer")).to_have_value("It left our warehouse yesterday.")
    assert not [m for m in (await customer_view(demo, cid))["messages"] if m["author_kind"] == "agent"]
    await screenshots(page, "agent-newer-message-warning")
    await page.get_by_label("Answer to the customer").fill("Glad it arrived!")
    await page.get_by_role("button", name="Send anyway").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    await expect(page.locator("#timeline .message.from-agent")).to_contain_text("Glad it arrived!")

    # With JavaScript: the live stream warns while typing, and the answer then goes out at once.
    page = await staff_browser(chromium, demo)
    await page.goto(f"/agent/conversations/{cid}")
    await page.get_by_label("Answer to the customer").fill("Anything else?")
    await demo.ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages", json={"body": "One more thing"})
    await expect(page.locator("#reply-newer-live")).to_contain_text(
        "A new message from the customer arrived while you were writing", timeout=2000)
    await expect(page.locator("#timeline")).to_contain_text("One more thing")
    await expect(page.get_by_label("Answer to the customer")).to_have_value("Anything else?")
    await page.get_by_role("button", name="Send answer").click()
    await expect(page.locator("#timeline .message.from-agent").last).to_contain_text("Anything else?")

    # The server's warning, as a browser with JavaScript gets it when the stream was slower than the agent.
    await page.get_by_label("Answer to the customer").fill("Are you still there?")
    await page.locator("[data-seen-message]").evaluate("e => { e.value = ''; }")
    await page.get_by_role("button", name="Send answer").click()
    await expect(page.locator("#reply-newer")).to_contain_text(
        "A new message from the customer arrived while you were writing")
    await expect(page.get_by_role("button", name="Send anyway")).to_be_visible()
    assert await serious_violations(page) == []
