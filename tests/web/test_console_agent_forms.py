"""The agent's forms on a conversation with JavaScript off, in a real browser: answer with a file, internal
note, close and reopen, subject, assignment, the portal's detail attributes, and redaction through its
confirmation page; refusals come back next to the field with what was typed kept."""

import re

from playwright.async_api import expect

from tests.fixtures.files import sample
from tests.kit.browser import screenshots, serious_violations
from tests.kit.console import staff_browser
from tests.kit.conversations import start

CONVERSATION_URL = re.compile(r"/agent/conversations/([0-9A-Z]{26})(#.*)?$")


async def customer_sees(demo, cid: str) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.ana.get(f"/api/v1/portals/demo/conversations/{cid}")
    assert response.status_code == 200, response.text
    return response.json()["conversation"]


async def test_answer_note_close_and_reopen_without_javascript(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Login fails", body="I cannot sign in since today."))["id"]
    page = await staff_browser(chromium, demo, javascript=False)
    await page.goto(f"/agent/conversations/{cid}")
    timeline = page.locator("#timeline")

    await page.get_by_label("Answer to the customer").fill("We reset your password; see the screenshot.")
    await page.locator("#reply-files").set_input_files(
        [{"name": "steps.png", "mimeType": "image/png", "buffer": sample("png")}])
    await page.get_by_role("button", name="Send answer").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    answer = timeline.locator(".message.from-agent")
    await expect(answer).to_contain_text("We reset your password")
    await expect(answer.get_by_role("link", name="steps.png")).to_be_visible()

    await page.get_by_role("textbox", name="Internal note").fill("Second lockout this month: watch it.")
    await page.get_by_role("button", name="Add internal note").click()
    await expect(timeline.locator(".message.note")).to_contain_text("Second lockout this month")

    seen = await customer_sees(demo, cid)
    assert [m["body"] for m in seen["messages"] if m["author_kind"] == "agent"] == [
        "We reset your password; see the screenshot."]
    assert "lockout" not in str(seen)

    # An empty answer is refused next to the field; a refused note keeps its text.
    await page.get_by_role("button", name="Send answer").click()
    await expect(page.locator("#reply-body-error")).to_have_text("Please write a message.")
    await expect(page.get_by_label("Answer to the customer")).to_have_attribute("aria-invalid", "true")
    await page.get_by_role("textbox", name="Internal note").fill("x" * 20)
    await page.locator("#note-files").set_input_files(
        [{"name": "empty.png", "mimeType": "image/png", "buffer": b""}])
    await page.get_by_role("button", name="Add internal note").click()
    await expect(page.locator("#note-files-error")).to_contain_text("A file is empty.")
    await expect(page.get_by_role("textbox", name="Internal note")).to_have_value("x" * 20)
    await page.goto(f"/agent/conversations/{cid}")

    await page.get_by_role("button", name="Close the conversation").click()
    await expect(page.locator("#conversation-header")).to_contain_text("Closed")
    await expect(timeline).to_contain_text("You closed the conversation.")
    assert (await customer_sees(demo, cid))["status"] == "closed"
    # A note goes on a closed conversation; an answer says it reopens it.
    await expect(page.get_by_role("button", name="Send answer and reopen")).to_be_visible()
    await page.get_by_role("button", name="Reopen the conversation").click()
    await expect(page.locator("#conversation-header")).to_contain_text("Open")
    await expect(timeline).to_contain_text("You reopened the conversation.")
    await page.get_by_role("button", name="Close the conversation").click()
    await page.get_by_label("Answer to the customer").fill("One more thing: it works again.")
    await page.get_by_role("button", name="Send answer and reopen").click()
    await expect(page.locator("#conversation-header")).to_contain_text("Open")
    assert (await customer_sees(demo, cid))["status"] == "open"


async def test_subject_assignment_and_details_without_javascript(demo, chromium) -> None:
    await demo.staff("zoe@example.com", "agent")
    await demo.settings_(detail_attributes=[{"attribute": "custom.order_number", "display_name": "Order number"},
                                            {"attribute": "reference", "display_name": "Reference"}])
    cid = (await start(demo.ana, subject="Order never came", body="Order A-77 did not arrive."))["id"]
    page = await staff_browser(chromium, demo, javascript=False)
    await page.goto(f"/agent/conversations/{cid}")
    timeline = page.locator("#timeline")

    await page.get_by_label("New subject").fill("   ")
    await page.get_by_role("button", name="Change the subject").click()
    await expect(page.locator("#subject-error")).to_have_text("Please write a subject of at most 200 characters.")
    await page.get_by_label("New subject").fill("Order A-77 lost")
    await page.get_by_role("button", name="Change the subject").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Order A-77 lost")
    await expect(timeline).to_contain_text("You changed the subject from “Order never came” to “Order A-77 lost”.")
    assert (await customer_sees(demo, cid))["subject"] == "Order A-77 lost"

    await page.get_by_role("button", name="Assign to me").click()
    await expect(page.locator("#conversation-header")).to_contain_text("Assigned to you")
    await expect(timeline).to_contain_text("You assigned the conversation to yourself.")
    await page.get_by_label("Assign to").select_option(label="Agent")  # zoe's display name is her role's
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(page.locator("#conversation-header")).to_contain_text(re.compile("Assigned to (you|Agent)"))
    await page.get_by_label("Assign to").select_option(label="Nobody (unassigned)")
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(page.locator("#conversation-header")).to_contain_text("Unassigned")
    await expect(timeline).to_contain_text("You unassigned the conversation.")
    assert "assigned" not in str([m.get("event") for m in (await customer_sees(demo, cid))["messages"]])

    await page.get_by_label("Order number").fill("A-77")
    await page.get_by_role("button", name="Save the details").click()
    await expect(page.get_by_label("Order number")).to_have_value("A-77")
    facts = {a["display_name"]: a["value"] for a in (await customer_sees(demo, cid))["attributes"]}
    assert facts == {"Order number": "A-77", "Reference": cid}
    # Past the field's own maxlength (as an old browser would send it): the service refuses, the text stays.
    await page.get_by_label("Order number").evaluate("e => e.removeAttribute('maxlength')")
    await page.get_by_label("Order number").fill("x" * 1001)
    await page.get_by_role("button", name="Save the details").click()
    await expect(page.locator("#attributes-error")).to_have_text("Each value can be at most 1,000 characters.")
    await expect(page.get_by_label("Order number")).to_have_value("x" * 1001)
    await screenshots(page, "agent-conversation-forms")


async def test_redaction_asks_on_a_page_of_its_own_without_javascript(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Card charged", body="My card 4111 1111 1111 1111 was charged twice."))["id"]
    page = await staff_browser(chromium, demo, javascript=False)
    await page.goto(f"/agent/conversations/{cid}")
    await page.get_by_role("link", name="Redact this message").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Erase this message for good?")
    await expect(page.locator("main")).to_contain_text("erased for good")
    await expect(page.locator("main")).to_contain_text("This cannot be undone.")
    await expect(page.locator("#redact-quote")).to_contain_text("4111")
    await screenshots(page, "agent-redact-confirm")
    await page.get_by_role("link", name="Cancel").click()
    await expect(page.locator("#timeline")).to_contain_text("4111")
    await page.get_by_role("link", name="Redact this message").click()
    await page.get_by_role("button", name="Erase for good").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    await expect(page.locator("#timeline")).to_contain_text("This message was redacted")
    assert "4111" not in await page.content()
    message = (await customer_sees(demo, cid))["messages"][0]
    assert message["redacted"] is True and message["body"] is None

    # The confirmation page with JavaScript, for the accessibility scan (axe runs in the page).
    page = await staff_browser(chromium, demo)
    second = (await start(demo.ana, subject="Another", body="Nothing secret"))["id"]
    await page.goto(f"/agent/conversations/{second}")
    await page.goto(await page.get_by_role("link", name="Redact this message").get_attribute("href") or "")
    await expect(page.get_by_role("button", name="Erase for good")).to_be_visible()
    assert await serious_violations(page) == []
    missing = await page.goto(f"/agent/conversations/{second}/messages/01JD8ZQ4S5K4W3YB8W1T0VQ9E2/redact")
    assert missing is not None and missing.status == 404
