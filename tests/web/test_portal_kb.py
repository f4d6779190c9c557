"""The knowledge base in a real browser: browsing by category, search with "did you mean" and highlighted
snippets, paging, an article page, internal articles for staff only (under the portal's switches), the
404 page of a hidden article, and article content that never runs script.

Each test writes the demo's articles through the admin API (`library`): four public ones in the categories
"account" and "billing", and the internal "Internal: issuing a goodwill credit" (billing); and turns the
portal's "portal for agents" and "internal KB" switches on, as `make run` seeds them."""

import re

from playwright.async_api import Page, expect

from tests.kit.browser import no_horizontal_scroll, screenshots, serious_violations
from tests.kit.portal import ADMIN_ARTICLES, inert, INTERNAL, library, SWITCHES, sign_in_customer, sign_in_staff, write


def titles(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#kb-results .kb-title")


async def test_browse_by_category_and_read_an_article(demo, chromium) -> None:
    await library(demo)
    for n in range(12):  # enough for a second page in "guides"
        await write(demo, f"Guide number {n:02d}", f"Step by step guide {n}.", category="guides")
    page = await chromium.page(demo.base_url)
    response = await page.goto("/portals/demo/kb")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", level=1, name="Knowledge base")).to_be_visible()
    shelves = page.get_by_role("navigation", name="Categories")
    await expect(shelves.get_by_role("link")).to_have_text(["All articles", "Account", "Billing", "Guides"])
    # Two public billing articles: the internal one is neither listed nor counted.
    await expect(shelves.locator("li", has_text="Billing")).to_contain_text("2 articles")
    await expect(page.get_by_text("goodwill")).to_have_count(0)
    assert await serious_violations(page) == []
    await screenshots(page, "kb-list")

    await shelves.get_by_role("link", name="Account").click()
    await expect(page.get_by_role("heading", level=1, name="Account")).to_be_visible()
    await expect(titles(page)).to_have_count(2)
    assert sorted(await titles(page).all_inner_texts()) == ["Change the e-mail address of your account",
                                                            "Reset your password"]
    await expect(shelves.get_by_role("link", name="Account")).to_have_attribute("aria-current", "page")

    await page.get_by_role("link", name="Reset your password").click()
    await expect(page).to_have_url(re.compile(r"/portals/demo/kb/reset-your-password$"))
    await expect(page.get_by_role("heading", level=1, name="Reset your password")).to_be_visible()
    body = page.locator("#kb-body")
    await expect(body.locator("strong", has_text="Forgot password")).to_be_visible()
    await expect(body.locator("ol > li")).to_have_count(3)
    await expect(page.locator(".kb-meta time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\d"))
    await expect(page.get_by_role("navigation", name="Breadcrumb").get_by_role("link")).to_have_text(
        ["Knowledge base", "Account"])
    await expect(page.locator("#kb-internal")).to_have_count(0)
    await expect(page.get_by_role("link", name="Contact support").last).to_have_attribute(
        "href", "/portals/demo/conversations/new")
    assert await serious_violations(page) == []
    await screenshots(page, "kb-article")

    # Paging: ten to a page, then the rest.
    await page.goto("/portals/demo/kb?category=guides")
    await expect(titles(page)).to_have_count(10)
    first_page = await titles(page).all_inner_texts()
    await page.get_by_role("link", name="More articles").click()
    await expect(titles(page)).to_have_count(2)
    assert set(await titles(page).all_inner_texts()).isdisjoint(first_page)
    await expect(page.get_by_role("link", name="More articles")).to_have_count(0)
    await page.get_by_role("link", name="First page").click()
    await expect(titles(page)).to_have_text(first_page)
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await no_horizontal_scroll(page)


async def test_search_corrects_a_misspelling_and_highlights_the_matches(demo, chromium) -> None:
    await library(demo)
    page = await chromium.page(demo.base_url)
    await page.goto("/portals/demo/kb")
    await page.get_by_role("searchbox", name="Search the knowledge base").fill("pasword")
    await page.get_by_role("button", name="Search").click()
    await expect(page).to_have_url(re.compile(r"/portals/demo/kb\?q=pasword$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Search results for “pasword”")
    corrected = page.locator("#kb-corrected")
    await expect(corrected).to_have_text("Showing results for password.")
    await expect(corrected.get_by_role("link", name="password")).to_have_attribute("href",
                                                                                  "/portals/demo/kb?q=password")
    await expect(titles(page).first).to_have_text("Reset your password")
    marks = page.locator("#kb-results .kb-snippet mark")
    assert await marks.count() >= 1
    assert {text.lower() for text in await marks.all_inner_texts()} == {"password"}
    await expect(page.get_by_role("searchbox", name="Search the knowledge base")).to_have_value("pasword")
    assert await serious_violations(page) == []
    await screenshots(page, "kb-search")

    # Corrected, but nothing in the category: "did you mean", with the link.
    await page.goto("/portals/demo/kb?q=pasword&category=billing")
    await expect(corrected).to_have_text("Did you mean password?")
    await expect(page.locator("#kb-empty")).to_contain_text("No articles match “pasword”.")

    # Nothing at all: what to do instead.
    await page.goto("/portals/demo/kb?q=xylophone")
    empty = page.locator("#kb-empty")
    await expect(empty).to_contain_text("No articles match “xylophone”.")
    await expect(empty.get_by_role("link", name="Contact support")).to_have_attribute(
        "href", "/portals/demo/conversations/new")
    await expect(page.locator("#kb-corrected")).to_have_count(0)
    assert await serious_violations(page) == []
    await screenshots(page, "kb-search-empty")


async def test_staff_see_internal_articles_with_a_marker_and_customers_never(demo, chromium) -> None:
    await library(demo)
    for who in ("anonymous", "customer"):
        page = await chromium.page(demo.base_url)
        if who == "customer":
            await sign_in_customer(page, demo)
        await page.goto("/portals/demo/kb")
        await expect(titles(page)).to_have_count(4)
        await expect(page.locator(".badge.internal")).to_have_count(0)
        await page.goto("/portals/demo/kb?q=goodwil")  # a word only the internal article holds
        await expect(page.locator("#kb-empty")).to_be_visible()
        await expect(page.locator("#kb-corrected")).to_have_count(0)  # no hint at the hidden word
        response = await page.goto(f"/portals/demo/kb/{INTERNAL}")
        assert response is not None and response.status == 404, who
        await expect(page.get_by_role("heading", level=1, name="Article not found")).to_be_visible()
        await page.context.close()

    page = await chromium.page(demo.base_url)
    await sign_in_staff(page, demo, "agent.kb@example.com", "agent")
    await page.goto("/portals/demo/kb")
    await expect(titles(page)).to_have_count(5)
    internal = page.locator(".kb-result", has_text="Internal: issuing a goodwill credit")
    await expect(internal.locator(".badge.internal")).to_have_text("Internal")
    await expect(page.locator(".kb-result .badge.internal")).to_have_count(1)
    await internal.get_by_role("link", name="Internal: issuing a goodwill credit").click()
    await expect(page.locator("#kb-internal")).to_have_text("Internal")
    await expect(page.get_by_text("Only staff see internal articles")).to_be_visible()
    assert await serious_violations(page) == []
    await screenshots(page, "kb-article-internal")
    await page.goto("/portals/demo/kb?q=goodwil")
    await expect(titles(page)).to_have_text(["Internal: issuing a goodwill credit"])

    # "Show only internal articles": staff see the internal ones alone.
    assert (await demo.admin.patch(SWITCHES, json={"show_only_internal": True})).status_code == 200
    await page.goto("/portals/demo/kb")
    await expect(titles(page)).to_have_text(["Internal: issuing a goodwill credit"])
    shelves = page.get_by_role("navigation", name="Categories")
    await expect(shelves.get_by_role("link")).to_have_text(["All articles", "Billing"])
    # "Portal for agents" off: staff read the portal as customers do.
    assert (await demo.admin.patch(SWITCHES, json={"portal_for_agents": False})).status_code == 200
    await page.goto("/portals/demo/kb")
    await expect(titles(page)).to_have_count(4)
    await expect(page.locator(".badge.internal")).to_have_count(0)
    response = await page.goto(f"/portals/demo/kb/{INTERNAL}")
    assert response is not None and response.status == 404


async def test_a_hidden_or_missing_article_is_a_404_page(demo, chromium) -> None:
    await write(demo, "Coming soon", "Not yet.", published=False, slug="coming-soon")
    withdrawn = await write(demo, "Old pricing", "Was 5 EUR.", slug="old-pricing")
    assert (await demo.admin.post(f"{ADMIN_ARTICLES}/{withdrawn['slug']}/unpublish")).status_code == 200
    page = await chromium.page(demo.base_url)
    for slug in ("coming-soon", "old-pricing", "no-such-article"):
        response = await page.goto(f"/portals/demo/kb/{slug}")
        assert response is not None and response.status == 404, slug
        await expect(page.get_by_role("heading", level=1, name="Article not found")).to_be_visible()
        await expect(page.get_by_role("searchbox", name="Search the knowledge base")).to_be_visible()
    await expect(page.get_by_role("link", name="All articles")).to_have_attribute("href", "/portals/demo/kb")
    assert await serious_violations(page) == []
    await screenshots(page, "kb-missing")


XSS_BODY = "\n\n".join([
    "zebracorn <script>window.__xss = 'body script'</script>",
    '<img src=x onerror="window.__xss = \'img onerror\'">',
    "[click me](javascript:window.__xss='link')",
    "[click me too](JaVaScRiPt:window.__xss='link2')",
    "[data](data:text/html,<script>window.__xss='data'</script>)",
    '<svg onload="window.__xss = \'svg\'"></svg>',
    '<a href="javascript:window.__xss=\'raw link\'" autofocus onfocus="window.__xss=\'focus\'">raw</a>',
    '<iframe srcdoc="<script>parent.__xss=\'iframe\'</script>"></iframe>',
    '![x](https://example.com/i.png "t\\" onerror=\\"window.__xss=1)',
    "<style>body { display: none }</style>",
    "[a safe link](https://example.com/help)",
])
ACTIVE = """() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
    .filter(a => a.name.startsWith('on') || /^\\s*(javascript|vbscript|data:text)/i.test(a.value))
    .map(a => e.tagName + ' ' + a.name + '=' + a.value))"""
SCRIPTS = "() => [...document.scripts].map(s => s.getAttribute('src') || 'inline: ' + s.textContent)"


async def test_article_content_never_runs_script(demo, chromium) -> None:
    title = "<script>window.__xss='title'</script> <img src=x onerror=window.__xss=2> Tricky title"
    await write(demo, title, XSS_BODY, category="<script>x</script>", slug="tricky")
    page = await chromium.page(demo.base_url)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    await page.goto("/portals/demo/kb")
    await expect(page.get_by_role("link", name=re.compile("Tricky title"))).to_contain_text("<script>")
    await inert(page, dialogs)
    await page.goto("/portals/demo/kb?q=zebracorn")
    snippet = page.locator(".kb-result", has_text="Tricky title").locator(".kb-snippet")
    await expect(snippet.locator("mark")).to_have_text(["zebracorn"])
    await expect(snippet).to_contain_text("<script>")  # shown as text
    await inert(page, dialogs)
    await page.goto("/portals/demo/kb/tricky")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("<script>window.__xss='title'</script>")
    body = page.locator("#kb-body")
    await expect(body).to_contain_text("<script>")  # raw HTML in Markdown is text, never markup
    # A `javascript:` link is not made a link at all; an https one is, and opens nothing of ours.
    await expect(body).to_contain_text("[click me](javascript:window.__xss='link')")
    await expect(body.get_by_role("link")).to_have_count(1)
    safe = body.get_by_role("link", name="a safe link")
    await expect(safe).to_have_attribute("href", "https://example.com/help")
    await expect(safe).to_have_attribute("rel", "noopener noreferrer nofollow")
    await inert(page, dialogs)
    await expect(page.locator("body")).to_be_visible()  # the <style> in the body was text, not a stylesheet


async def tab_to(page: Page, target) -> None:  # type: ignore[no-untyped-def]
    """Press Tab until `target` has the focus (at most 40 times)."""
    for _ in range(40):
        if await target.evaluate("e => e === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the focus by Tab")


async def test_search_and_read_with_javascript_off_and_by_keyboard(demo, chromium) -> None:
    await library(demo)
    page = await chromium.page(demo.base_url, javascript=False)
    await page.goto("/portals/demo/kb")
    await tab_to(page, page.get_by_role("searchbox", name="Search the knowledge base"))
    await page.keyboard.type("refund")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/portals/demo/kb\?q=refund$"))
    await expect(titles(page)).to_have_text(["Refunds: how long do they take?"])
    await tab_to(page, page.get_by_role("link", name="Refunds: how long do they take?"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1, name="Refunds: how long do they take?")).to_be_visible()
    await expect(page.locator("#kb-body")).to_contain_text("5 to 10 business days")


def test_a_snippet_is_trusted_for_its_marks_only() -> None:
    """The page re-escapes what the kb service sends as a snippet: escaped text stays as it was, text that was
    not escaped becomes text, and only balanced <mark> pairs remain markup."""
    from services.gateway.web.routes_kb import marked

    assert marked(None) is None and marked("") is None
    assert marked("a &lt;b&gt; <mark>password</mark> &amp; more") == \
        "a &lt;b&gt; <mark>password</mark> &amp; more"
    assert marked("<script>alert(1)</script> <mark>x</mark>") == \
        "&lt;script&gt;alert(1)&lt;/script&gt; <mark>x</mark>"
    assert marked('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"
    assert marked("</mark>a<mark>b<mark>c") == "a<mark>bc</mark>"
    assert marked("&lt;mark&gt; is text") == "&lt;mark&gt; is text"
