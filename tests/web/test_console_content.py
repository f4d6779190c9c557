"""The admin console's content pages in a real browser against a running Portico: a content manager writes an
article with the Markdown editor and its preview (the kb service's sanitised HTML: a `<script>` in the text
never runs), publishes it, and a customer finds it by a misspelled search; the same with JavaScript off,
with revisions, unpublishing and deleting; the theme draft saved, previewed on the real portal pages and
published; a colour that fails the contrast rule refused next to the colours; an old theme upgraded; who
may open these pages."""

import re

from playwright.async_api import Page, expect

from contracts.sessions import SESSION_COOKIE
from tests.kit.browser import checked, no_horizontal_scroll, screenshots, serious_violations
from tests.kit.console import sign_in_staff

ARTICLES = "/api/v1/admin/portals/demo/kb/articles"
THEME = "/api/v1/admin/portals/demo/theme"
BODY = ("To pair the **thermostat** with the app, hold the *pairing* button for five seconds.\n\n"
        "<script>window.__owned = 1</script>\n\n<img src=x onerror=\"window.__owned = 2\">\n\n"
        "[Open the manual](javascript:window.__owned=3)")


async def checked_with_javascript(chromium, demo, page: Page, name: str) -> None:  # type: ignore[no-untyped-def]
    """`checked` for a page shown without JavaScript (axe needs it): the same address in a browser with
    JavaScript and the same cookies; the screenshots are of the page without."""
    other = await chromium.page(demo.base_url)
    await other.context.add_cookies(await page.context.cookies())
    await other.goto(page.url)
    assert await serious_violations(other) == []
    assert await no_horizontal_scroll(page)
    await screenshots(page, name)
    await other.context.close()


async def editor_page(chromium, demo, email: str = "writer@example.com", next_path: str = "/admin/articles",  # type: ignore[no-untyped-def]
                      **options: object) -> Page:
    """A content manager (created) signed in through the staff sign-in page, on `next_path`."""
    await demo.staff(email, "content_manager")
    page = await chromium.page(demo.base_url, **options)
    await sign_in_staff(page, email, next_path=next_path)
    return page


async def never_ran(page: Page) -> None:
    assert await page.evaluate("typeof window.__owned") == "undefined"


async def test_a_content_manager_previews_and_publishes_an_article_a_customer_finds_misspelled(demo, chromium):
    page = await editor_page(chromium, demo)
    await expect(page).to_have_url(re.compile(r"/admin/portals/demo/articles$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Articles of Demo support")
    await expect(page.locator("#articles-empty")).to_contain_text("This portal has no articles yet.")
    await checked(page, "admin-articles-empty")

    await page.get_by_role("link", name="New article").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("New article")
    # A refusal keeps what was typed and says what to fix next to the field, and in a summary that takes the focus.
    await page.get_by_label("Category").fill("devices")
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#article-errors")).to_be_focused()
    await expect(page.get_by_label("Category")).to_have_value("devices")
    await checked(page, "admin-article-refused-js")
    await page.get_by_label("Title").fill("Pairing the thermostat with the app")
    await page.get_by_label("Text (Markdown)").fill(BODY)
    # The live preview: the kb service's HTML, the script shown as text, never run, the link made harmless.
    preview = page.locator("#article-preview")
    await expect(preview.locator("strong")).to_have_text("thermostat")
    await expect(preview).to_contain_text("<script>window.__owned = 1</script>")
    await expect(preview.locator("script, img, a[href^='javascript']")).to_have_count(0)
    await never_ran(page)
    await checked(page, "admin-article-new")

    # "Preview" sends the form: the same HTML comes back, nothing is stored.
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("#article-notice")).to_have_text("This is a preview. Nothing is saved yet.")
    await expect(preview.locator("em")).to_have_text("pairing")
    await expect(preview.locator("script, img")).to_have_count(0)
    await expect(page.get_by_label("Title")).to_have_value("Pairing the thermostat with the app")
    await never_ran(page)
    listed = (await demo.admin.get(ARTICLES)).json()["articles"]
    assert "Pairing the thermostat with the app" not in {a["title"] for a in listed}

    await page.get_by_role("button", name="Save and publish").click()
    await expect(page).to_have_url(re.compile(r"/admin/portals/demo/articles/pairing-the-thermostat-with-the-app/"
                                              r"edit\?done=published$"))
    await expect(page.locator("#article-notice")).to_have_text("The article is saved and published.")
    await expect(page.locator("#article-state .badge.open")).to_have_text("Published")
    await never_ran(page)
    await checked(page, "admin-article-edit")
    await page.get_by_role("link", name="Articles of Demo support").click()
    row = page.locator("#article-pairing-the-thermostat-with-the-app")
    await expect(row.get_by_role("link")).to_have_text("Pairing the thermostat with the app")
    await expect(row).to_contain_text("Published")
    await expect(row).to_contain_text("devices")
    await checked(page, "admin-articles")

    # A customer (signed out) finds it by a misspelled search on the portal's knowledge base, and it never runs script.
    customer = await chromium.page(demo.base_url)
    await customer.goto("/portals/demo/kb?q=termostat")
    await expect(customer.locator("#kb-corrected")).to_contain_text("thermostat")
    result = customer.get_by_role("link", name="Pairing the thermostat with the app")
    await expect(result).to_be_visible()
    await result.click()
    await expect(customer.get_by_role("heading", level=1)).to_have_text("Pairing the thermostat with the app")
    await expect(customer.locator("main strong").first).to_have_text("thermostat")
    await expect(customer.locator("main script, main img")).to_have_count(0)
    await never_ran(customer)


async def test_without_javascript_an_article_is_drafted_edited_unpublished_and_deleted(demo, chromium):
    page = await editor_page(chromium, demo, next_path="/admin/portals/demo/articles/new", javascript=False)
    await expect(page.get_by_role("heading", level=1)).to_have_text("New article")
    # A refusal keeps what was typed and says what to fix next to the field.
    await page.get_by_label("Text (Markdown)").fill("Only a body, **no title**.")
    await page.get_by_role("button", name="Save draft").click()
    title = page.get_by_label("Title")
    await expect(title).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#article-title-error")).to_have_text(
        "Give the article a title (at most 300 characters).")
    await expect(page.get_by_label("Text (Markdown)")).to_have_value("Only a body, **no title**.")
    await screenshots(page, "admin-article-refused")

    await title.fill("Opening hours")
    await page.get_by_label("Staff only (internal)").check()
    await page.get_by_label("Text (Markdown)").fill("We answer **Monday to Friday**.\n\n<script>window.__owned=1</script>")
    await page.get_by_role("button", name="Preview").click()
    preview = page.locator("#article-preview")
    await expect(preview.locator("strong")).to_have_text("Monday to Friday")
    await expect(preview).to_contain_text("<script>window.__owned=1</script>")
    await expect(preview.locator("script")).to_have_count(0)
    await expect(page.get_by_label("Staff only (internal)")).to_be_checked()
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.locator("#article-notice")).to_have_text("The article is saved.")
    state = page.locator("#article-state")
    await expect(state.locator(".badge.closed")).to_have_text("Draft")
    await expect(state.locator(".badge.internal")).to_have_text("Internal")
    article = (await demo.admin.get(f"{ARTICLES}/opening-hours")).json()["article"]
    assert article["status"] == "draft" and article["visibility"] == "internal"

    # Edit it (a new revision), publish, unpublish.
    await page.get_by_label("Text (Markdown)").fill("We answer **Monday to Saturday**.")
    await page.get_by_label("Everyone (public)").check()
    await page.get_by_role("button", name="Save draft").click()
    await page.get_by_role("button", name="Publish", exact=True).click()
    await expect(state.locator(".badge.open")).to_have_text("Published")
    found = await demo.ana.get("/api/v1/portals/demo/kb/articles/opening-hours")
    assert found.status_code == 200 and "Monday to Saturday" in found.json()["article"]["body_html"]
    await page.get_by_role("button", name="Unpublish").click()
    await expect(page.locator("#article-notice")).to_contain_text("The article is unpublished")
    assert (await demo.ana.get("/api/v1/portals/demo/kb/articles/opening-hours")).status_code == 404

    await page.get_by_role("link", name="Revisions").click()
    revisions = page.locator("#revisions > li")
    await expect(revisions).to_have_count(2)
    await expect(revisions.first).to_contain_text("Revision 2")
    await expect(revisions.first).to_contain_text("by Content_Manager")
    await expect(revisions.nth(1).locator(".badge.internal")).to_have_text("Internal")
    await checked_with_javascript(chromium, demo, page, "admin-article-revisions")

    # Delete: a confirmation first, then it is gone.
    await page.get_by_role("link", name="Opening hours").click()
    await page.get_by_role("link", name="Delete").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Delete “Opening hours”?")
    await checked_with_javascript(chromium, demo, page, "admin-article-delete")
    await page.get_by_role("button", name="Delete for good").click()
    await expect(page).to_have_url(re.compile(r"/admin/portals/demo/articles\?deleted="))
    await expect(page.locator("#article-notice")).to_have_text("“Opening hours” was deleted.")
    await expect(page.locator("#articles-empty")).to_be_visible()
    assert (await demo.admin.get(f"{ARTICLES}/opening-hours")).status_code == 404


async def body_colour(page: Page) -> str:
    return await page.evaluate("getComputedStyle(document.body).backgroundColor")


async def test_the_theme_draft_is_saved_previewed_on_the_portal_and_published(demo, chromium):
    page = await editor_page(chromium, demo, next_path="/admin/theme")
    await expect(page).to_have_url(re.compile(r"/admin/portals/demo/theme$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Theme of Demo support")
    await checked(page, "admin-theme")

    # A colour whose text would be hard to read: refused, the words next to the colours, what was typed kept.
    await page.get_by_label("Text (text)").fill("#777777")
    await page.get_by_role("button", name="Save the draft").click()
    refusal = page.locator("#theme-colours-error")
    await expect(refusal).to_contain_text("4.47:1")
    await expect(refusal).to_contain_text("4.5:1")
    await expect(page.get_by_label("Text (text)")).to_have_value("#777777")
    await expect(page.get_by_label("Text (text)")).to_have_attribute("aria-invalid", "true")
    await checked(page, "admin-theme-refused")
    assert (await demo.admin.get(THEME)).json()["draft"] is None

    # A readable draft: background and header for the home page; the picker follows the text field.
    await page.get_by_label("Text (text)").fill("#1f2328")
    await page.get_by_label("Background (background)").fill("#fffbe6")
    await expect(page.get_by_label("Background: pick a colour")).to_have_value("#fffbe6")
    await page.get_by_label("Header (Markdown)").fill("**Spring sale** on every thermostat")
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.locator("#theme-notice")).to_have_text(
        "The draft is saved. Customers still see the published theme.")
    await expect(page.get_by_label("Background (background)")).to_have_value("#fffbe6")

    # The draft on the real home page, for the editor only; a customer still sees the published theme.
    customer = await chromium.page(demo.base_url)
    await customer.goto("/portals/demo/")
    published = await body_colour(customer)
    assert published == "rgb(255, 255, 255)"
    await page.locator("#preview-links").get_by_role("link", name="Home page").click()
    await expect(page).to_have_url(re.compile(r"/portals/demo/\?preview=draft$"))
    await expect(page.locator("#preview-banner")).to_contain_text("You are previewing the draft theme")
    await expect(page.locator(".theme-header strong")).to_have_text("Spring sale")
    assert await body_colour(page) == "rgb(255, 251, 230)"
    await screenshots(page, "admin-theme-preview")
    await customer.reload()
    assert await body_colour(customer) == published
    await expect(customer.locator(".theme-header")).to_have_count(0)

    # Publish: the customer's page changes.
    await page.goto("/admin/portals/demo/theme")
    await page.get_by_role("button", name="Publish the draft").click()
    await expect(page.locator("#theme-notice")).to_have_text("The draft is published: customers see it now.")
    await customer.reload()
    assert await body_colour(customer) == "rgb(255, 251, 230)"
    await expect(customer.locator(".theme-header strong")).to_have_text("Spring sale")
    # Another view keeps its own settings.
    await customer.goto("/portals/demo/kb")
    assert await body_colour(customer) == published


async def test_an_old_theme_is_upgraded_and_each_view_is_edited_on_its_own(demo, chromium):
    old = {"name": "Classic", "version": 1, "views": {
        "home": {"colours": {"primary": "#0b5394"}, "header": "Welcome"},
        "article": {"colours": {"primary": "#0b5394"}}}}
    assert (await demo.admin.put(f"{THEME}/draft", json=old)).status_code == 200
    page = await editor_page(chromium, demo, next_path="/admin/portals/demo/theme?view=my_conversations",
                             javascript=False)
    upgrade = page.locator("#theme-upgrade")
    await expect(upgrade).to_contain_text("My Conversations")
    await expect(upgrade).to_contain_text("Conversation detail")
    await expect(page.get_by_label("Theme name")).to_have_value("Classic")
    await checked_with_javascript(chromium, demo, page, "admin-theme-upgrade")
    await page.get_by_role("button", name="Upgrade the theme").click()
    await expect(page.locator("#theme-notice")).to_have_text("The theme is upgraded to the current page templates.")
    await expect(page.locator("#theme-upgrade")).to_have_count(0)
    # The conversation views took the home page's settings; changing one leaves the others as they are.
    await expect(page.get_by_label("Links and buttons (primary)")).to_have_value("#0b5394")
    await page.get_by_label("Links and buttons (primary)").fill("#8250df")
    await page.get_by_role("button", name="Save the draft").click()
    theme = (await demo.admin.get(THEME)).json()
    assert theme["draft"]["version"] == 3
    assert theme["draft_source"]["views"]["my_conversations"]["colours"]["primary"] == "#8250df"
    assert theme["draft_source"]["views"]["home"]["colours"]["primary"] == "#0b5394"
    assert theme["draft_source"]["views"]["home"]["header"] == "Welcome"


async def test_an_agent_or_a_customer_opening_an_admin_content_page_gets_403(demo, chromium):
    agent = await chromium.page(demo.base_url)
    await sign_in_staff(agent, "agent@example.com")
    for path in ("/admin/portals/demo/articles", "/admin/portals/demo/articles/new", "/admin/portals/demo/theme",
                 "/admin/portals/demo/articles/anything/edit"):
        response = await agent.goto(path)
        assert response is not None and response.status == 403, path
        await expect(agent.get_by_role("heading", level=1)).to_have_text("No access")
    assert await serious_violations(agent) == []
    await screenshots(agent, "admin-content-forbidden")
    posted = await agent.request.post("/admin/portals/demo/articles/new", form={"title": "x", "body": "y"},
                                      headers={"Origin": demo.base_url})
    assert posted.status == 403
    assert "x" not in {a["title"] for a in (await demo.admin.get(ARTICLES)).json()["articles"]}

    customer = await chromium.page(demo.base_url)
    await customer.context.add_cookies([{"name": SESSION_COOKIE, "value": demo.ana.cookies[SESSION_COOKIE],
                                         "url": demo.base_url}])
    response = await customer.goto("/admin/portals/demo/theme")
    assert response is not None and response.status == 403
    # Signed out: the staff sign-in, coming back afterwards.
    stranger = await chromium.page(demo.base_url)
    await stranger.goto("/admin/portals/demo/articles")
    await expect(stranger).to_have_url(re.compile(r"/agent/login\?next=/admin/portals/demo/articles$"))
