"""The portal and the staff console in the visitor's language: a German browser (Chromium's `locale` sets
`Accept-Language`) sees every page in German, with no English left over and refusals in German words;
the language switch changes the language and remembers it; times show in the browser's time zone once
the page knows it, and say "UTC" until then."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from services.gateway.web.i18n import Formats
from services.kb.seed import ARTICLES
from tests.kit.browser import screenshots, serious_violations
from tests.kit.conversations import start
from tests.kit.email import answer
from tests.kit.portal import signed_in, write

# English the pages would show if a string escaped the catalogues (checked as whole words, case-sensitive:
# "Send" must not match "Senden"). The demo's own articles are English content, which these avoid.
ENGLISH = ["Log in", "Sign in", "Sign out", "Send", "Search", "Knowledge base", "My conversations", "Contact support",
           "How can we help", "Newest articles", "All articles", "Still need help", "Help centre", "Skip to content",
           "Categories", "Updated", "Subject", "Your message", "Your reply", "Attach files", "Last activity", "Open",
           "Closed", "Channel", "Continue", "E-mail address", "Check your e-mail", "Please", "characters",
           "There is a problem", "Not found", "Back to the start page", "Created", "Messages", "Support team",
           "Started on", "Main", "Language", "Breadcrumb", "Remove", "Sending", "conversation", "conversations",
           "Inbox", "Assignee", "Anyone", "Unassigned", "Password", "Staff", "Internal", "Settings", "Admin console",
           "Timeline", "Reopen", "Close the conversation", "Add internal note", "Answer", "Show", "you",
           "The", "This", "Your", "We"]
# The demo's articles are content, in English; whatever the page shows of them is not looked at.
CONTENT = sorted({part for title, _category, _visibility, body in ARTICLES for part in (title, *body.split("\n"))},
                 key=len, reverse=True)
LEFTOVER = re.compile("|".join(rf"(?<![\w-]){re.escape(words)}(?![\w-])" for words in ENGLISH))

# Everything a person can read or hear on the page: its text, its title, labels only a screen reader
# speaks, placeholders, and the words the page's scripts show later (data- attributes, composer words).
READABLE = """() => {
  const parts = [document.title, document.body.innerText];
  for (const element of document.querySelectorAll("*")) {
    for (const attribute of element.attributes) {
      const name = attribute.name;
      if (["placeholder", "aria-label", "title", "alt"].includes(name) || /^data-(msg|text|t|copied|copy-failed|empty|failed|title)(-|$)/.test(name)) {
        parts.push(attribute.value);
      } else if (name === "data-words") {
        for (const words of Object.values(JSON.parse(attribute.value))) { parts.push(words.text || words); }
      }
    }
  }
  return parts.join("\\n");
}"""


async def in_german(page: Page, name: str, *, shows: str | None = None, axe: bool = True, names: str = "") -> None:
    """The page as it is now is German: `lang`, no English left over, no serious axe-core violation (axe
    needs JavaScript: `axe=False` in a browser without it). `names`: a selector of elements that show
    identifiers, not words (the services' names on the operations page), left out of the check."""
    assert await page.evaluate("document.documentElement.lang") == "de", name
    if shows:
        await expect(page.locator("main"), name).to_contain_text(shows)
    assert not axe or await serious_violations(page) == [], name
    await screenshots(page, f"german-{name}")
    if names:
        await page.locator(names).evaluate_all("elements => elements.forEach(e => { e.textContent = ''; })")
    text = await page.evaluate(READABLE)
    for content in CONTENT:
        text = text.replace(content, "")
    assert LEFTOVER.findall(text) == [], (name, LEFTOVER.findall(text))


async def visit(page: Page, path: str, status: int = 200) -> None:
    response = await page.goto(path)
    assert response is not None and response.status == status, (path, response and response.status)
    assert response.headers["content-language"] == "de", path


async def test_a_german_browser_sees_the_pages_in_german_without_signing_in(demo, sink, chromium) -> None:
    await write(demo, "Wo finde ich meine Rechnung?", "Ihre Rechnungen finden Sie unter **Konto → Rechnungen**.",
                category="rechnungen")
    page = await chromium.page(demo.base_url, locale="de-DE")
    await visit(page, "/portals/demo/")
    await expect(page.get_by_role("heading", name="Wie können wir helfen?")).to_be_visible()
    await expect(page.get_by_role("link", name="Anmelden", exact=True)).to_be_visible()
    await in_german(page, "home")

    await visit(page, "/portals/demo/kb?q=Rechnung")
    await expect(page.locator("#kb-results")).to_contain_text("Wo finde ich meine Rechnung?")
    await in_german(page, "kb-search", shows="Suchergebnisse für „Rechnung“")
    await page.get_by_role("link", name="Wo finde ich meine Rechnung?").click()
    await expect(page.get_by_role("heading", level=1, name="Wo finde ich meine Rechnung?")).to_be_visible()
    await in_german(page, "kb-article", shows="Hat das Ihre Frage nicht beantwortet?")
    await visit(page, "/portals/demo/kb/gibt-es-nicht", 404)
    await in_german(page, "kb-missing", shows="Artikel nicht gefunden")
    await visit(page, "/portals/nope/", 404)
    await expect(page.get_by_role("heading", name="Nicht gefunden")).to_be_visible()
    await in_german(page, "no-portal", shows="Dieses Hilfe-Center gibt es nicht.")

    # Signing in: a wrong address, the code page, a wrong code: each refusal in German words.
    await visit(page, "/portals/demo/login")
    await page.get_by_label("E-Mail-Adresse").fill("keine Adresse")
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Weiter", exact=True).click()
    assert (await sent.value).status == 422
    await in_german(page, "login-refused", shows="Bitte geben Sie eine gültige E-Mail-Adresse ein")
    await page.get_by_label("E-Mail-Adresse").fill("sam@example.com")
    await page.get_by_role("button", name="Weiter", exact=True).click()
    await expect(page.get_by_role("heading", name="Prüfen Sie Ihre E-Mails")).to_be_visible()
    await in_german(page, "login-code", shows="Wir haben einen Code an sam@example.com gesendet.")
    await page.get_by_label("Code", exact=True).fill("000000")
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Anmelden", exact=True).click()
    assert (await sent.value).status == 401
    await in_german(page, "login-code-wrong", shows="Dieser Code ist nicht richtig.")


async def test_a_german_customer_sees_conversations_answers_and_refusals_in_german(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Drucker druckt nicht", body="Hallo, mein Drucker druckt nicht."))["id"]
    await answer(demo, cid, "Guten Tag, bitte starten Sie den Drucker neu.")
    page = await signed_in(chromium, demo, locale="de-DE")
    await visit(page, "/portals/demo/conversations")
    await expect(page.get_by_role("link", name="Drucker druckt nicht")).to_be_visible()
    await in_german(page, "my-conversations", shows="Letzte Aktivität")
    await page.get_by_role("link", name="Drucker druckt nicht").click()
    await expect(page.locator("#timeline")).to_contain_text("Guten Tag, bitte starten Sie den Drucker neu.")
    await in_german(page, "conversation", shows="Nachrichten")
    # Too long, said before sending (composer.js, words from the page's data- attributes).
    await page.get_by_label("Ihre Antwort").fill("x" * 10_241)
    await page.get_by_role("button", name="Senden").click()
    await expect(page.locator("#composer-body-error")).to_have_text(
        "Ihre Nachricht hat 10.241 Zeichen; erlaubt sind höchstens 10.240. Bitte kürzen Sie sie.")
    await in_german(page, "conversation-too-long")

    await visit(page, "/portals/demo/conversations/new")
    await in_german(page, "new-conversation", shows="Betreff")


async def test_without_javascript_the_server_refuses_in_german_with_the_detail_in_german(demo, chromium) -> None:
    page = await signed_in(chromium, demo, locale="de-DE", javascript=False)
    await visit(page, "/portals/demo/conversations/new")
    await page.get_by_label("Betreff").fill("Zu lang")
    await page.get_by_label("Ihre Nachricht").fill("x" * 10_241)
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Senden").click()
    assert (await sent.value).status == 422
    await expect(page.locator("#composer-body-error")).to_have_text(
        "Ihre Nachricht ist zu lang. Die Nachricht hat 10.241 Zeichen; erlaubt sind höchstens 10.240.")
    await in_german(page, "new-conversation-refused", shows="Es gibt ein Problem", axe=False)


async def test_the_switch_changes_the_language_and_remembers_it(demo, chromium) -> None:
    page = await chromium.page(demo.base_url, locale="de-DE")
    await visit(page, "/portals/demo/kb?q=Passwort")
    await page.get_by_role("navigation", name="Sprache").get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Search results for “Passwort”")).to_be_visible()  # query kept
    assert await page.evaluate("document.documentElement.lang") == "en"
    response = await page.goto("/portals/demo/")  # no ?lang= any more: the cookie remembers
    assert response is not None and response.headers["content-language"] == "en"
    await expect(page.get_by_role("heading", name="How can we help?")).to_be_visible()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "portico_lang")
    assert cookie["value"] == "en" and cookie["expires"] > datetime.now().timestamp() + 300 * 86400
    await page.get_by_role("navigation", name="Language").get_by_role("link", name="Deutsch").click()
    await expect(page.get_by_role("heading", name="Wie können wir helfen?")).to_be_visible()
    await page.goto("/agent/login")  # the console follows the same choice
    await expect(page.get_by_role("heading", name="Anmeldung für Mitarbeitende")).to_be_visible()


async def test_a_browser_in_another_language_gets_english_and_an_austrian_one_german(demo, chromium) -> None:
    for locale, language in (("fr-FR", "en"), ("ja-JP", "en"), ("de-AT", "de"), ("en-US", "en")):
        page = await chromium.page(demo.base_url, locale=locale)
        response = await page.goto("/portals/demo/")
        assert response is not None and response.headers["content-language"] == language, locale
        assert await page.evaluate("document.documentElement.lang") == language, locale
        await page.context.close()


async def shown_time(chromium, demo, cid: str, zone: str, javascript: bool = True) -> tuple[str, datetime]:  # type: ignore[no-untyped-def]
    page = await signed_in(chromium, demo, locale="de-DE", timezone_id=zone, javascript=javascript)
    await page.goto("/portals/demo/")  # the first page learns the browser's time zone (portal.js)
    await page.goto(f"/portals/demo/conversations/{cid}")
    time = page.locator("#timeline .message.from-agent time").first
    text, when = await time.inner_text(), datetime.fromisoformat(await time.get_attribute("datetime") or "")
    await page.context.close()
    return text, when


async def test_times_are_in_the_browser_time_zone_and_say_utc_until_it_is_known(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Zeitzonen", body="Wann kam die Antwort?"))["id"]
    await answer(demo, cid, "Jetzt.")
    new_york, when = await shown_time(chromium, demo, cid, "America/New_York")
    tokyo, _ = await shown_time(chromium, demo, cid, "Asia/Tokyo")
    assert new_york == Formats("de", ZoneInfo("America/New_York")).datetime(when, "short")
    assert tokyo == Formats("de", ZoneInfo("Asia/Tokyo")).datetime(when, "short")
    assert new_york.split(", ")[1] != tokyo.split(", ")[1]  # 14 hours apart: other hours
    assert "UTC" not in new_york and re.fullmatch(r"\d\d\.\d\d\.\d\d, \d\d:\d\d", new_york)
    without_script, _ = await shown_time(chromium, demo, cid, "Asia/Tokyo", javascript=False)
    assert without_script == Formats("de", ZoneInfo("UTC")).datetime(when, "short")
    assert without_script.endswith(" UTC")


async def staff_in_german(chromium, demo, email: str, password: str = "a-long-staff-password") -> Page:  # type: ignore[no-untyped-def]
    page = await chromium.page(demo.base_url, locale="de-DE")
    await visit(page, "/agent/login")
    await expect(page.get_by_role("heading", name="Anmeldung für Mitarbeitende")).to_be_visible()
    await page.get_by_label("E-Mail").fill(email)
    await page.get_by_label("Passwort").fill("falsch")
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Anmelden").click()
    assert (await sent.value).status == 401
    await expect(page.locator("#login-error")).to_have_text("Die E-Mail-Adresse oder das Passwort ist nicht richtig.")
    await in_german(page, "console-login-refused")
    await page.get_by_label("Passwort").fill(password)
    await page.get_by_role("button", name="Anmelden").click()
    await expect(page).not_to_have_url(re.compile(r"/agent/login"))
    return page


async def test_the_staff_console_in_german(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Drucker druckt nicht", body="Hallo, mein Drucker druckt nicht."))["id"]
    page = await staff_in_german(chromium, demo, "agent@example.com")
    await expect(page.get_by_role("link", name="Drucker druckt nicht")).to_be_visible()
    await in_german(page, "console-inbox", shows="Drucker druckt nicht")
    await visit(page, f"/agent/conversations/{cid}")
    await in_german(page, "console-conversation", shows="Interne Notiz")
    await visit(page, "/agent/kb")
    await in_german(page, "console-kb")


async def test_the_admin_console_in_german(demo, chromium) -> None:
    await demo.staff("leitung@example.com", "admin")
    page = await staff_in_german(chromium, demo, "leitung@example.com")
    for name, path, shows in (
            ("admin", "/admin/", "Portale"), ("admin-settings", "/admin/portals/demo/settings", "Einstellungen"),
            ("admin-secrets", "/admin/portals/demo/secrets", "Secrets"), ("admin-keys", "/admin/api-keys", "Schlüssel"),
            ("admin-staff", "/admin/staff", "Teammitglied hinzufügen"),
            ("admin-articles", "/admin/portals/demo/articles", "Neuer Artikel"),
            ("admin-article-new", "/admin/portals/demo/articles/new", "Wer ihn lesen darf"),
            ("admin-theme", "/admin/portals/demo/theme", "Farben"), ("admin-operations", "/admin/operations", "Dienste")):
        await visit(page, path)
        await in_german(page, name, shows=shows, names="#service-status tbody th, .mono")
