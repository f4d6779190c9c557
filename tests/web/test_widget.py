"""The chat widget on a company's own site (the example shop, `docs/examples/widget/company.py`, on
`localhost` while Portico is on `127.0.0.1`: another site), in a Chromium that blocks third-party
cookies: the virtual assistant, the hand-over to a person on the `chat` channel, the agent's answer live
in the panel, accessibility, and the widget on the portal's own pages.
"""

from playwright.async_api import expect

from contracts.sessions import SESSION_COOKIE
from tests.kit.browser import no_horizontal_scroll, screenshots, serious_violations
from tests.kit.email import answer, demo, settings, sink  # noqa: F401  (fixtures)
from tests.kit.widget import (  # noqa: F401  (fixtures)
    BUTTON_NAME,
    ask,
    frame_of,
    knowledge_base,
    link_gate,
    open_panel,
    sites,
    stack,
    strict,
)


async def chat_conversations(demo) -> list[dict]:  # type: ignore[no-untyped-def]
    response = await demo.agent.get("/api/v1/agent/conversations", params={"channel": "chat"})
    assert response.status_code == 200, response.text
    return response.json()["conversations"]


async def agent_view(demo, cid: str) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.agent.get(f"/api/v1/agent/conversations/{cid}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_assistant_offers_the_article_then_hands_over_to_a_person_who_answers_live(
        demo, sites, strict) -> None:
    page = await strict.page(sites.shop)
    # A cookie of Portico's that any third-party request would carry, were third-party cookies allowed.
    await page.context.add_cookies([{"name": "probe", "value": "1", "url": demo.base_url, "sameSite": "None",
                                     "secure": True}])
    await page.goto("/")
    button = page.get_by_role("button", name=BUTTON_NAME)
    await expect(button).to_be_visible()
    await expect(button).to_have_attribute("aria-expanded", "false")
    await screenshots(page, "widget-closed")
    assert "probe" not in await frame_of(page).evaluate("document.cookie"), "third-party cookies are not blocked"
    # (`void`: Playwright would call the function `on` returns, which stops following.)
    await page.evaluate("window.heard = []; void PorticoChat.on('message', function (m) { window.heard.push(m); })")

    panel = await open_panel(page)
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(panel.locator("#message")).to_be_focused()
    await expect(panel.locator("#who")).to_have_text("Not signed in")
    await ask(panel, "where is my invoce")  # sic: the search forgives the typo
    offer = panel.locator(".entry", has=panel.get_by_text("Did that solve it?"))
    await expect(offer.get_by_role("link", name="Where is my invoice?")).to_be_visible()
    assert await offer.get_by_role("link").count() <= 3
    await expect(offer.get_by_role("link").first).to_have_attribute("href", "/portals/demo/kb/where-is-my-invoice")
    assert await serious_violations(frame_of(page)) == []
    assert await serious_violations(page) == []
    await screenshots(page, "widget-open")
    await page.set_viewport_size({"width": 375, "height": 740})
    await expect(button).to_be_hidden()  # the panel fills a phone's screen; it closes from inside
    assert await no_horizontal_scroll(page)
    await page.set_viewport_size({"width": 1280, "height": 800})

    await offer.get_by_role("button", name="No, I need a person").click()
    email = panel.get_by_label("Your e-mail address")
    await expect(email).to_be_focused()
    await panel.get_by_role("button", name="Continue", exact=True).click()
    await expect(panel.get_by_text("Please enter your e-mail address.")).to_be_visible()
    await expect(email).to_have_attribute("aria-invalid", "true")
    assert await serious_violations(frame_of(page)) == []  # the e-mail form, with its error
    await email.fill("carla@example.com")
    await panel.get_by_role("button", name="Continue", exact=True).click()
    await expect(panel.get_by_text("You are now talking with the support team.", exact=False)).to_be_visible()
    await expect(panel.locator("#message-label")).to_have_text("Your message")
    await expect(panel.locator("#who")).to_have_text("Writing as carla@example.com")

    chats = await chat_conversations(demo)
    assert len(chats) == 1 and chats[0]["customer_email"] == "carla@example.com", chats
    assert chats[0]["channel"] == "chat" and chats[0]["reply_channel"] == "chat"
    assert chats[0]["subject"] == "where is my invoce"
    first = (await agent_view(demo, chats[0]["id"]))["messages"][0]
    # The agent sees the question and what the assistant offered.
    assert first["body"].startswith("where is my invoce") and "Where is my invoice?" in first["body"], first
    assert "/portals/demo/kb/where-is-my-invoice" in first["body"] and first["channel"] == "chat"

    await answer(demo, chats[0]["id"], "Your invoice is under Billing, Invoices.")
    await expect(panel.locator(".entry.agent").get_by_text("Your invoice is under Billing, Invoices.")).to_be_visible()
    await page.wait_for_function("window.heard.length === 1")
    assert await page.evaluate("window.heard[0].conversationId") == chats[0]["id"]
    assert "Your invoice" not in await page.evaluate("JSON.stringify(window.heard)")  # the text stays in the panel

    await panel.get_by_label("Your message").fill("Thanks, found it")
    await panel.get_by_role("button", name="Send").click()
    await expect(panel.locator(".entry.visitor").get_by_text("Thanks, found it")).to_be_visible()
    messages = (await agent_view(demo, chats[0]["id"]))["messages"]
    assert [m["channel"] for m in messages if m["kind"] == "message"] == ["chat", "chat", "chat"]
    await screenshots(page, "widget-chat")
    assert await serious_violations(frame_of(page)) == []

    await panel.locator("#message").press("Escape")
    await expect(button).to_have_attribute("aria-expanded", "false")
    await expect(button).to_be_focused()
    await expect(page.locator("#portico-chat-frame")).to_be_hidden()


async def test_the_portal_pages_carry_the_chat_signed_in_as_their_customer(demo, strict) -> None:
    await knowledge_base(demo)
    page = await strict.page(demo.base_url)
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": demo.ana.cookies[SESSION_COOKIE],
                                     "url": demo.base_url}])
    await page.goto("/portals/demo/")
    panel = await open_panel(page)
    await expect(panel.locator("#who")).to_have_text("Signed in as ana")
    await ask(panel, "refund tkaes how long")
    offer = panel.locator(".entry", has=panel.get_by_text("Did that solve it?"))
    await expect(offer.get_by_role("link", name="Refunds: how long do they take?")).to_be_visible()
    await offer.get_by_role("button", name="No, I need a person").click()  # signed in: no e-mail asked
    await expect(panel.get_by_text("You are now talking with the support team.", exact=False)).to_be_visible()
    chats = await chat_conversations(demo)
    assert len(chats) == 1 and chats[0]["customer_email"] == "ana@example.com", chats
    # The portal's own conversation list shows it too (same account, same session).
    listed = (await demo.ana.get("/api/v1/portals/demo/conversations")).json()["conversations"]
    assert [c["channel"] for c in listed] == ["chat"]
    assert await serious_violations(frame_of(page)) == []
    await screenshots(page, "widget-portal-page")
