"""My Conversations, a conversation and starting one, in a real browser against a running Portico: the
list with its badges, filters, search, paging and empty states; the timeline as the API gives it
(answers, subject changes, redactions, never internal notes); files; reopen under each policy; the
link in the answer e-mail after signing in; and the main flows with JavaScript off."""

import re

from playwright.async_api import Page, expect

from tests.kit.browser import checked, screenshots
from tests.fixtures.files import sample
from tests.helpers import wait_until
from tests.kit.conversations import closed_days_ago, start
from tests.kit.email import answer
from tests.kit.portal import signed_in

CONVERSATION_URL = re.compile(r"/portals/demo/conversations/([0-9A-Z]{26})(#.*)?$")


def conversation_id(page: Page) -> str:
    found = CONVERSATION_URL.search(page.url)
    assert found, page.url
    return found.group(1)


async def test_start_a_conversation_with_a_file_then_see_it_listed_and_answered(demo, chromium) -> None:
    page = await signed_in(chromium, demo)
    response = await page.goto("/portals/demo/conversations")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", name="No conversations yet")).to_be_visible()
    await checked(page, "conversations-empty")

    await page.get_by_role("link", name="Start a conversation").first.click()
    await expect(page.get_by_role("heading", name="Start a conversation")).to_be_visible()
    await checked(page, "conversation-new")
    await page.get_by_label("Subject").fill("The printer prints blank pages")
    await page.get_by_label("Your message").fill("Since Monday every page comes out blank.\nPhoto attached.")
    await page.get_by_label("Attach files (optional)").set_input_files(
        [{"name": "printout.png", "mimeType": "image/png", "buffer": sample("png")}])
    await expect(page.get_by_role("button", name="Remove printout.png")).to_be_visible()
    await page.get_by_role("button", name="Send").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    cid = conversation_id(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("The printer prints blank pages")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("Since Monday every page comes out blank.")
    download = timeline.get_by_role("link", name="printout.png")
    file = await page.request.get(await download.get_attribute("href") or "")
    assert file.status == 200 and await file.body() == sample("png")

    # Answered while Ana looks at her list (an open conversation page would show the answer at once).
    await page.goto("/portals/demo/conversations")
    await answer(demo, cid, "Please try the cleaning cycle from the printer's menu.")
    await answer(demo, cid, "Customer sounds annoyed; check the warranty.", internal=True)
    await page.reload()
    item = page.locator("#conversation-list li", has_text="The printer prints blank pages")
    await expect(item.get_by_text("New answer")).to_be_visible()
    await expect(item.get_by_text("Open", exact=True)).to_be_visible()
    await expect(item.get_by_text("Help centre", exact=True)).to_be_visible()
    await expect(item).to_contain_text("Please try the cleaning cycle")
    await checked(page, "conversations")

    await item.get_by_role("link", name="The printer prints blank pages").click()
    await expect(timeline).to_contain_text("Please try the cleaning cycle from the printer's menu.")
    await expect(page.locator("#timeline .message.from-agent")).to_have_count(1)
    assert "warranty" not in await page.content()
    await checked(page, "conversation")
    # Opened: the answer is read, and the marker is gone.
    await page.goto("/portals/demo/conversations")
    await expect(page.locator("#conversation-list").get_by_text("New answer")).to_have_count(0)


async def test_the_timeline_shows_redactions_subject_changes_and_the_chosen_attributes(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Order never arrived", body="My card number is 4111 1111 1111 1111"))["id"]
    await demo.agent.post(f"/api/v1/agent/conversations/{cid}/attributes", json={"values": {"order_number": "A-77"}})
    await demo.settings_(detail_attributes=[{"attribute": "custom.order_number", "display_name": "Order number"},
                                            {"attribute": "reference", "display_name": "Reference"}])
    renamed = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/subject", json={"subject": "Order A-77 lost"})
    assert renamed.status_code == 200, renamed.text
    detail = (await demo.agent.get(f"/api/v1/agent/conversations/{cid}")).json()
    first = next(m for m in detail["messages"] if m["kind"] == "message")
    redacted = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/messages/{first['id']}/redact")
    assert redacted.status_code == 200, redacted.text

    page = await signed_in(chromium, demo)
    await page.goto(f"/portals/demo/conversations/{cid}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Order A-77 lost")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("This message was redacted.")
    assert "4111" not in await page.content()
    await expect(timeline).to_contain_text("The subject was changed from “Order never arrived” to “Order A-77 lost”.")
    facts = page.locator("#conversation-header dl")
    await expect(facts.locator("div", has_text="Order number")).to_contain_text("A-77")
    await expect(facts.locator("div", has_text="Reference")).to_contain_text(cid)
    await expect(facts.locator("div", has_text="Created")).to_contain_text(re.compile(r"\d"))
    await checked(page, "conversation-redacted")


async def test_reopen_under_each_policy(demo, chromium) -> None:
    # within_days, its window passed: a sentence, no button (set before the portal is first read).
    await demo.settings_(reopen_enabled=True, reopen_policy="within_days", reopen_within_days=7)
    late = (await start(demo.ana, subject="Closed long ago"))["id"]
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{late}/close")).status_code == 200
    closed_days_ago(demo, late, 10)
    page = await signed_in(chromium, demo)
    await page.goto(f"/portals/demo/conversations/{late}")
    state = page.locator("#conversation-state")
    await expect(state).to_contain_text("closed more than 7 days ago and can no longer be reopened")
    await expect(state.get_by_role("button")).to_have_count(0)
    await expect(page.locator("#composer")).to_have_count(0)
    await checked(page, "conversation-window-passed")

    # always: reopen, and the composer is back.
    await demo.settings_(reopen_policy="always")
    cid = (await start(demo.ana, subject="Reopen me"))["id"]
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    await page.goto(f"/portals/demo/conversations/{cid}")
    await expect(page.locator("#conversation-header .badge.closed")).to_have_text("Closed")
    await checked(page, "conversation-closed")
    await state.get_by_role("button", name="Reopen this conversation").click()
    await expect(page).to_have_url(f"{demo.base_url}/portals/demo/conversations/{cid}")
    await expect(page.locator("#conversation-header .badge.open")).to_have_text("Open")
    await expect(page.locator("#timeline")).to_contain_text("The conversation was reopened.")
    await expect(page.get_by_label("Your reply")).to_be_visible()

    # new_conversation: a follow-up, linked to the closed one.
    await demo.settings_(reopen_policy="new_conversation")
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    await page.reload()
    await expect(state.get_by_role("button", name="Reopen this conversation")).to_have_count(0)
    await state.get_by_role("button", name="Start a follow-up").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    follow_up = conversation_id(page)
    assert follow_up != cid
    await expect(page.get_by_role("heading", level=1)).to_have_text("Reopen me")
    earlier = page.locator("#conversation-header").get_by_role("link", name="See the earlier conversation")
    assert await earlier.get_attribute("href") == f"/portals/demo/conversations/{cid}"
    await checked(page, "conversation-follow-up")

    # Reopening off: a sentence saying so, no button; a page shown before it was turned off gets the words.
    await demo.settings_(reopen_policy="always")
    await page.goto(f"/portals/demo/conversations/{cid}")
    await demo.settings_(reopen_enabled=False)
    async with page.expect_navigation() as sent:
        await state.get_by_role("button", name="Reopen this conversation").click()
    assert (await sent.value).status == 403  # type: ignore[union-attr]
    await expect(state.get_by_role("alert")).to_have_text(
        "Closed conversations cannot be reopened here. Please start a new conversation.")
    await page.goto(f"/portals/demo/conversations/{cid}")
    await expect(state).to_contain_text("Closed conversations cannot be reopened in this help centre.")
    await expect(state.get_by_role("button")).to_have_count(0)
    await expect(state.get_by_role("link", name="Start a new conversation")).to_be_visible()


async def test_filters_search_and_paging(demo, chromium) -> None:
    for n in range(22):
        await start(demo.ana, subject=f"Question number {n:02}", body=f"Body of question {n:02}")
    pelican = (await start(demo.ana, subject="Where is my pelican?", body="It was delivered to the wrong zoo."))["id"]
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{pelican}/close")).status_code == 200

    page = await signed_in(chromium, demo)
    await page.goto("/portals/demo/conversations")
    items = page.locator("#conversation-list li")
    await expect(items).to_have_count(20)
    await page.get_by_role("link", name="Older conversations").click()
    await expect(items).to_have_count(3)
    await expect(page.get_by_role("link", name="Older conversations")).to_have_count(0)
    await page.get_by_role("link", name="Newest conversations").click()
    await expect(items).to_have_count(20)

    await page.get_by_label("Status").select_option("closed")
    await page.get_by_role("button", name="Show").click()
    await expect(items).to_have_count(1)
    await expect(items.first.get_by_text("Closed", exact=True)).to_be_visible()
    await expect(items.first).to_contain_text("Where is my pelican?")

    await page.goto("/portals/demo/conversations")
    await page.get_by_label("Search").fill("pelican")
    await page.get_by_role("button", name="Show").click()
    await expect(items).to_have_count(1)
    assert "q=pelican" in page.url

    await page.get_by_label("Search").fill("")
    await page.get_by_label("Channel").select_option("email")
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("heading", name="No conversation matches")).to_be_visible()
    await expect(items).to_have_count(0)
    await checked(page, "conversations-no-match")
    await page.get_by_role("link", name="Clear the filters").click()
    await expect(items).to_have_count(20)
    await page.goto("/portals/demo/conversations?lang=de")
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    await expect(items).to_have_count(20)


async def test_my_conversations_turned_off_is_a_page_that_says_so(demo, chromium) -> None:
    await demo.settings_(my_conversations_enabled=False)
    page = await signed_in(chromium, demo)
    response = await page.goto("/portals/demo/conversations")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", name="My conversations")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Conversations are not shown in this help centre.")
    await expect(page.get_by_role("link", name="Search the knowledge base")).to_be_visible()
    await checked(page, "conversations-off")


async def test_signed_out_a_new_conversation_starts_with_signing_in(demo, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await page.goto("/portals/demo/conversations/new")
    assert "/portals/demo/login?next=/portals/demo/conversations/new" in page.url


async def test_the_link_in_the_answer_email_opens_the_conversation_after_signing_in(demo, sink, chromium) -> None:
    cid = (await start(demo.ana, subject="Refund for order 12"))["id"]
    await answer(demo, cid, "We have refunded order 12.")
    await wait_until(lambda: any("See the whole conversation" in str(m) for m in sink.to("ana@example.com")))
    mail = next(m for m in sink.to("ana@example.com") if "See the whole conversation" in str(m))
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"See the whole conversation: (\S+)", text).group(1)  # type: ignore[union-attr]
    path = "/" + link.split("/", 3)[3]
    assert path == f"/portals/demo/conversations/{cid}"

    page = await chromium.page(demo.base_url)   # a browser that is signed out
    await page.goto(path)
    assert f"/portals/demo/login?next={path}" in page.url
    await page.get_by_label("E-mail address").fill("ana@example.com")
    await page.get_by_role("button", name="Continue", exact=True).click()
    await page.get_by_label("Code", exact=True).fill(await wait_for_code(sink))
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{demo.base_url}{path}")
    await expect(page.locator("#timeline")).to_contain_text("We have refunded order 12.")


async def wait_for_code(sink) -> str:  # type: ignore[no-untyped-def]
    def code() -> str | None:
        for mail in reversed(sink.to("ana@example.com")):
            found = re.search(r"\b(\d{6})\b", mail.get_body(preferencelist=("plain",)).get_content())
            if found and "code" in str(mail["Subject"]).lower():
                return found.group(1)
        return None

    await wait_until(code)
    return code()  # type: ignore[return-value]


async def test_start_reply_and_reopen_with_javascript_off(demo, chromium) -> None:
    page = await signed_in(chromium, demo, javascript=False)
    await page.goto("/portals/demo/conversations/new")
    await page.get_by_label("Subject").fill("No script here")
    await page.get_by_label("Your message").fill("Written without JavaScript.")
    await page.get_by_label("Attach files (optional)").set_input_files(
        [{"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": sample("pdf")}])
    await page.get_by_role("button", name="Send").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    cid = conversation_id(page)
    await expect(page.locator("#timeline")).to_contain_text("Written without JavaScript.")
    await expect(page.locator("#timeline").get_by_role("link", name="invoice.pdf")).to_be_visible()

    await page.get_by_label("Your reply").fill("And a second message, no file.")
    await page.get_by_role("button", name="Send").click()
    await expect(page).to_have_url(CONVERSATION_URL)
    await expect(page.locator("#timeline .message.mine")).to_have_count(2)
    await expect(page.locator("#timeline")).to_contain_text("And a second message, no file.")
    await screenshots(page, "conversation-no-js")  # axe needs scripts: the same page is scanned with them on

    # A second click on Send (the same form sent again) writes nothing new. The form as a browser sends
    # it with no file chosen: an empty `files` part with an empty file name.
    form = ("--b0undary\r\nContent-Disposition: form-data; name=\"idempotency_key\"\r\n\r\nthe-key-of-one-form\r\n"
            "--b0undary\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nSent twice by a double click\r\n"
            "--b0undary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n\r\n--b0undary--\r\n")
    for _ in range(2):
        sent = await demo.ana.post(f"/portals/demo/conversations/{cid}/messages", content=form.encode(),
                                   headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
        assert sent.status_code == 303, sent.text[-2000:]
        assert sent.headers["location"].startswith(f"/portals/demo/conversations/{cid}#message-")
    await page.reload()
    await expect(page.locator("#timeline .message.mine", has_text="Sent twice by a double click")).to_have_count(1)

    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    await page.reload()
    await page.get_by_role("button", name="Reopen this conversation").click()
    await expect(page.locator("#conversation-header .badge.open")).to_have_text("Open")
    await expect(page.get_by_label("Your reply")).to_be_visible()
