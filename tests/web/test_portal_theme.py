"""The portal's theme in a real browser: the published theme of each view (colours, custom CSS, header and
footer) styles every page; `?preview=draft` shows the draft to editors only and stays on while they follow
links; a theme's header, footer, colours and CSS never run script; a theme whose words would be hard to
read is refused (WCAG 2.1 AA) and the pages keep a readable one."""

import re

from playwright.async_api import Page, expect

from services.kb.domain import contrast_ratio
from tests.kit.browser import screenshots, serious_violations
from tests.kit.portal import FOOTER_XSS, HEADER_XSS, inert, publish, sign_in_customer, sign_in_staff, view, VIEWS, write

THEME = "/api/v1/admin/portals/demo/theme"
# Each view its own colours and heading colour, all readable (checked by the kb service on saving).
LOOKS = {
    "home": {"text": "#102a43", "background": "#fffdf5", "h1": "#5b2100"},
    "article": {"text": "#1b2e1b", "background": "#f5fff5", "h1": "#004d1a"},
    "my_conversations": {"text": "#2b1b2e", "background": "#fbf5ff", "h1": "#4a0072"},
    "conversation_detail": {"text": "#2e1b1b", "background": "#fff5f5", "h1": "#7a0000"},
}


def rgb(colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def hex_of(css: str) -> str:
    r, g, b = (int(n) for n in re.findall(r"\d+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


async def looks(page: Page, text: str, background: str) -> None:
    body = page.locator("body")
    await expect(body).to_have_css("color", rgb(text))
    await expect(body).to_have_css("background-color", rgb(background))


async def test_the_published_theme_styles_every_view(demo, chromium) -> None:
    await write(demo, "Reset your password", "Open the sign-in page.", category="account", slug="reset")
    await publish(demo, "Acme", {v: view({"text": c["text"], "background": c["background"]},
                                         custom_css=f"h1 {{ color: {c['h1']} }}", header=f"**Acme** {v} header",
                                         footer="© Acme · [Privacy](https://acme.example/privacy)")
                                 for v, c in LOOKS.items()})
    page = await chromium.page(demo.base_url)
    await sign_in_customer(page, demo)
    started = await page.context.request.post("/api/v1/portals/demo/conversations",
                                              data={"subject": "Themed", "body": "Hello"})
    assert started.status == 201, await started.text()
    cid = (await started.json())["conversation"]["id"]
    pages = [("home", "/portals/demo/"), ("article", "/portals/demo/kb"), ("article", "/portals/demo/kb/reset"),
             ("my_conversations", "/portals/demo/conversations"),
             ("conversation_detail", f"/portals/demo/conversations/{cid}")]
    for name, path in pages:
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        look = LOOKS[name]
        await looks(page, look["text"], look["background"])
        await expect(page.locator("h1").first).to_have_css("color", rgb(look["h1"]))
        await expect(page.locator(".theme-header")).to_have_text(f"Acme {name} header")
        await expect(page.locator(".theme-header strong")).to_have_text("Acme")
        await expect(page.locator(".theme-footer").get_by_role("link", name="Privacy")).to_have_attribute(
            "href", "https://acme.example/privacy")
        # What the reader gets: the contrast of the page's own computed colours.
        colours = await page.evaluate("() => { const s = getComputedStyle(document.body); "
                                      "return [s.color, s.backgroundColor]; }")
        assert contrast_ratio(hex_of(colours[0]), hex_of(colours[1])) >= 4.5, (path, colours)
        assert await serious_violations(page) == [], path
    await page.goto("/portals/demo/kb/reset")
    await screenshots(page, "theme-article")

    # An unreadable theme is refused and the pages keep the published one.
    refused = await demo.admin.put(f"{THEME}/draft", json={"name": "Grey", "version": 3, "views": {
        "article": view({"text": "#777777", "background": "#ffffff", "surface": "#ffffff"})}})
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_setting"
    assert "text #777777 on background #ffffff" in refused.json()["message"]
    assert "4.5:1" in refused.json()["message"]
    assert (await demo.admin.get(THEME)).json()["draft"]["name"] == "Acme"
    await page.goto("/portals/demo/kb/reset")
    await looks(page, LOOKS["article"]["text"], LOOKS["article"]["background"])


LIVE = {"text": "#1f2328", "background": "#f0f7ff"}
DRAFT = {"text": "#3d1f00", "background": "#fff4e5"}


async def test_the_draft_theme_is_previewed_by_editors_only_and_across_links(demo, chromium) -> None:
    await write(demo, "Reset your password", "Open the sign-in page.", slug="reset")
    await publish(demo, "Live", {v: view(LIVE) for v in VIEWS})

    editor = await chromium.page(demo.base_url)
    await sign_in_staff(editor, demo, "editor@example.com", "content_manager")
    saved = await demo.admin.put(f"{THEME}/draft", json={"name": "Winter", "version": 3,
                                                          "views": {v: view(DRAFT) for v in VIEWS}})
    assert saved.status_code == 200, saved.text

    # Anyone but an editor: the query and the cookie change nothing.
    for who in ("anonymous", "customer", "agent"):
        page = await chromium.page(demo.base_url)
        if who == "customer":
            await sign_in_customer(page, demo)
        elif who == "agent":
            await sign_in_staff(page, demo, "agent.theme@example.com", "agent")
        await page.context.add_cookies([{"name": "portico_preview", "value": "draft", "url": demo.base_url
                                         + "/portals/demo/"}])
        for path in ("/portals/demo/?preview=draft", "/portals/demo/kb/reset"):
            await page.goto(path)
            await looks(page, LIVE["text"], LIVE["background"])
            await expect(page.locator("#preview-banner")).to_have_count(0)
        await page.context.close()

    # An editor sees the draft, and keeps seeing it while following links, until they stop.
    await editor.goto("/portals/demo/?preview=draft")
    await looks(editor, DRAFT["text"], DRAFT["background"])
    banner = editor.locator("#preview-banner")
    await expect(banner).to_contain_text("You are previewing the draft theme “Winter”")
    assert await serious_violations(editor) == []
    await screenshots(editor, "theme-preview")
    await editor.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge base").click()
    await expect(editor).to_have_url(re.compile(r"/portals/demo/kb$"))
    await looks(editor, DRAFT["text"], DRAFT["background"])
    await editor.get_by_role("link", name="Reset your password").click()
    await looks(editor, DRAFT["text"], DRAFT["background"])
    await banner.get_by_role("link", name="Stop previewing").click()
    await looks(editor, LIVE["text"], LIVE["background"])
    await expect(banner).to_have_count(0)
    await editor.goto("/portals/demo/kb")
    await looks(editor, LIVE["text"], LIVE["background"])

    # The demo admin previews as well.
    admin = await chromium.page(demo.base_url)
    signed = await admin.context.request.post("/api/v1/staff/session", data={
        "email": "admin@example.com", "password": "a-long-admin-password"})
    assert signed.status == 200, await signed.text()
    await admin.goto("/portals/demo/kb/reset?preview=draft")
    await looks(admin, DRAFT["text"], DRAFT["background"])


async def test_previewing_without_a_draft_shows_the_published_theme_and_says_so(demo, chromium) -> None:
    editor = await chromium.page(demo.base_url)
    await sign_in_staff(editor, demo, "editor@example.com", "content_manager")
    await editor.goto("/portals/demo/?preview=draft")
    await expect(editor.locator("#preview-banner")).to_contain_text("There is no draft theme to preview")
    await looks(editor, "#1f2328", "#ffffff")  # the default theme


REFUSED = [
    view({"primary;}</style><script>window.__xss=1</script>": "#123456"}),
    view({"primary": "#123456;}</style><script>window.__xss=1</script>"}),
    view({}, custom_css="a { font-family: '</style><script>window.__xss=1</script>' }"),
    view({}, custom_css="</style><script>window.__xss=1</script>"),
    {**view({}), "logo_url": "javascript:window.__xss=1"},
    {**view({}), "logo_url": "https://x.example/l.png\" onerror=\"window.__xss=1"},
]


async def test_a_themes_header_footer_colours_and_css_never_run_script(demo, chromium) -> None:
    for bad in REFUSED:
        response = await demo.admin.put(f"{THEME}/draft", json={"name": "Bad", "version": 3, "views": {"home": bad}})
        assert response.status_code == 422 and response.json()["error"] == "invalid_setting", (bad, response.text)
    await write(demo, "Reset your password", "Open the sign-in page.", slug="reset")
    # A quote in the logo's URL is allowed (no space, an https URL) and stays inside the attribute.
    logo = 'https://logo.example/l.png"onerror="window.__xss=1'
    await publish(demo, "Tricky", {v: {**view({"primary": "#1a4d8f"}, header=HEADER_XSS, footer=FOOTER_XSS,
                                              custom_css="h1 { color: #123456 }"), "logo_url": logo} for v in VIEWS})
    page = await chromium.page(demo.base_url)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    await sign_in_customer(page, demo)
    for path in ("/portals/demo/", "/portals/demo/kb", "/portals/demo/kb/reset", "/portals/demo/conversations"):
        await page.goto(path)
        await expect(page.locator(".theme-header")).to_contain_text("<script>window.__xss = 'header script'</script>")
        await expect(page.locator(".theme-header strong")).to_have_text("Acme")
        await expect(page.locator(".theme-footer")).to_contain_text("<iframe")
        await expect(page.locator(".theme-footer").get_by_role("link")).to_have_text(["privacy"])
        await expect(page.locator("h1").first).to_have_css("color", rgb("#123456"))
        await expect(page.locator("img.logo")).to_have_attribute("src", logo)
        await inert(page, dialogs)
        # (The chat widget's own frame, from services/gateway/web/widget, is the one iframe allowed.)
        assert await page.locator("iframe:not(#portico-chat-frame), svg, style:not([nonce])").count() == 0
