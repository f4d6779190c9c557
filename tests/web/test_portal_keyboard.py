"""The portal by keyboard only, in a real Chromium against a running Portico: a customer signs in with an
e-mailed code, starts a conversation, opens it from My Conversations, replies, and reopens it once an
agent closed it, pressing only Tab, Shift+Tab, Enter and Space and typing (no clicks, no `fill`). At
every stop the focused element is on the screen and shows that it has the focus (an outline or a shadow),
and the first stop, "Skip to content", skips to the page's content."""

from playwright.async_api import Page, expect

from tests.kit.browser import PHONE
from tests.kit.portal import code_for

# The focused element: what it is, whether it is on the screen and not covered, and whether it shows a focus
# indicator.
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) { return null; }
  const box = e.getBoundingClientRect(), style = getComputedStyle(e);
  // Nothing drawn over it (a floating button, a sticky bar): the middle of the element is the element.
  const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return {
    covered: hit && !(hit === e || e.contains(hit)) ? hit.tagName.toLowerCase() + (hit.id ? "#" + hit.id : "") : null,
    what: `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""} ${(e.textContent || e.value || "").trim().slice(0, 40)}`,
    visible: box.width > 0 && box.height > 0 && style.visibility !== "hidden" && Number(style.opacity) > 0 &&
             box.bottom > 0 && box.right > 0 && box.top < innerHeight && box.left < innerWidth,
    indicator: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 1) || style.boxShadow !== "none",
  };
}"""


async def focus_shown(page: Page) -> str:
    """The focused element, after checking that it is on the screen and shows its focus."""
    focused = await page.evaluate(FOCUSED)
    assert focused is not None, "the focus is nowhere"
    assert focused["visible"] and focused["indicator"] and not focused["covered"], focused
    return focused["what"]


async def tab_to(page: Page, selector: str, key: str = "Tab", limit: int = 40) -> str:
    """Press `key` (Tab or Shift+Tab) until the element matching `selector` has the focus, checking every
    stop on the way."""
    stops = []
    for _ in range(limit):
        await page.keyboard.press(key)
        stops.append(await focus_shown(page))
        if await page.evaluate("selector => document.activeElement.matches(selector)", selector):
            return stops[-1]
    raise AssertionError(f"{selector} never got the focus by {key}: {stops}")


async def focused_is(page: Page, selector: str) -> bool:
    return await page.evaluate("selector => document.activeElement.matches(selector)", selector)


async def test_a_customer_does_everything_by_keyboard(demo, sink, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await page.goto("/portals/demo/")

    # The first stop skips the header: the next Tab is in the page's content.
    assert (await tab_to(page, "a.skip", limit=1)).endswith("Skip to content")
    await page.keyboard.press("Enter")
    assert await focused_is(page, "main#main")
    await tab_to(page, "main input#q", limit=1)
    await tab_to(page, "header.site a.brand", key="Shift+Tab")  # and back up through the header
    await tab_to(page, "main a[href='/portals/demo/conversations/new']")
    await page.keyboard.press("Enter")

    # Signed out: signing in first, with the code from the e-mail, then on to the form.
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await tab_to(page, "input#email")
    await page.keyboard.type("kim@example.com")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    assert await focused_is(page, "input#code")
    await focus_shown(page)
    await page.keyboard.type(await code_for(sink, "kim@example.com"))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{demo.base_url}/portals/demo/conversations/new")

    await tab_to(page, "#composer-subject")
    await page.keyboard.type("My keyboard types twice")
    await tab_to(page, "#composer-body", limit=1)
    await page.keyboard.type("Every key I press appears twice.")
    await tab_to(page, "#composer-send")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("My keyboard types twice")
    cid = page.url.rsplit("/", 1)[1].split("#")[0]

    # Opened from My Conversations.
    await tab_to(page, "header.site nav a[href='/portals/demo/conversations']")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("My conversations")
    await tab_to(page, f"#conversation-list a[href='/portals/demo/conversations/{cid}']")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("My keyboard types twice")

    # A reply, sent with Space; from here on at a phone's width, where floating parts cover more.
    await page.set_viewport_size(PHONE)
    await tab_to(page, "#composer-body")
    await page.keyboard.type("It also happens with another keyboard.")
    await tab_to(page, "#composer-send")
    await page.keyboard.press("Space")
    await expect(page.locator("#timeline .message.mine")).to_have_count(2)
    await expect(page.locator("#timeline")).to_contain_text("It also happens with another keyboard.")

    # Closed by the agent (the page shows it at once), and reopened by the customer.
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    await expect(page.get_by_role("heading", name="This conversation is closed")).to_be_visible()
    await tab_to(page, "#conversation-state button")
    await page.keyboard.press("Enter")
    await expect(page.locator("#conversation-header .badge.open")).to_have_text("Open")
    await expect(page.locator("#timeline")).to_contain_text("The conversation was reopened.")
    await tab_to(page, "#composer-body")
