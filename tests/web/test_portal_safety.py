"""What people write never runs in a customer's browser, and the portal's pages hold against the usual
attacks, in a real Chromium against a running Portico:

- an XSS corpus in everything a customer sees that someone else (or the address bar) wrote: subjects,
  customers' and agents' messages (also arriving live), display names from the SSO token and of staff,
  file names, the conversation attributes an admin shows with their display names, searches echoed back,
  the login page's `next` and the e-mail field, and the theme's header and footer on the pages
  `test_portal_theme.py` does not visit (article bodies: `test_portal_kb.py`). The text is shown as text,
  no dialog opens, `window.__xss` stays undefined, and no page breaks its Content-Security-Policy;
- every page's Content-Security-Policy allows no inline script or style and no `eval`;
- signing in never sends the browser to another site, whatever `next` or `referralUrl` say;
- a form posted from a page on another origin is refused (403) and stores nothing, the customer's cookie
  notwithstanding."""

import asyncio
import re
import time
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import jwt
import pytest
import uvicorn
from playwright.async_api import Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from contracts.sessions import SESSION_COOKIE
from services.runtime.nats import free_port
from tests.fixtures.files import sample
from tests.helpers import wait_until
from tests.kit.browser import PHONE, no_horizontal_scroll, screenshots
from tests.kit.conversations import start
from tests.kit.uploads import upload
from tests.kit.portal import code_for, everything_stored, FOOTER_XSS, HEADER_XSS, nothing_stored, publish, set_portal, signed_in, strict_csp, view, VIEWS, Watch, write

CORPUS = {
    "script": "<script>window.__xss=1</script>",
    "img": '<img src=x onerror="window.__xss=1">',
    "svg": '"><svg onload=window.__xss=1>',
    "link": "javascript:window.__xss=1",
    "template": "{{7*7}} {% raw %}{{ }}{% endraw %} ${7*7}",
    "style": "</style><script>window.__xss=1</script>",
    "unicode": "line\u2028separator \u202eevil.exe",
    "attribute": "' autofocus onfocus='window.__xss=1",
}
CUSTOMER_NAME = CORPUS["script"] + CORPUS["attribute"]
AGENT_NAME = CORPUS["img"] + " " + CORPUS["svg"]
FILE_NAME = "<img src=x onerror=window.__xss=1>.png"
PASSWORD = "a-long-staff-password"

# Anything that would run: an event handler attribute, a script URL, a script not from the site's own
# /static/ or /widget/, markup a text may not become.
ACTIVE = """() => {
  const urls = ["href", "src", "action", "formaction", "xlink:href", "data", "poster", "srcdoc"];
  const found = [];
  for (const e of document.querySelectorAll("*")) {
    for (const a of e.attributes) {
      if (a.name.startsWith("on") || (urls.includes(a.name) && /^\\s*(javascript|vbscript|data:text)/i.test(a.value))) {
        found.push(`${e.tagName} ${a.name}=${a.value}`);
      }
    }
  }
  for (const s of document.scripts) {
    const src = s.getAttribute("src") || "";
    if (!/^\\/(static|widget)\\//.test(src)) { found.push("script: " + (src || s.textContent)); }
  }
  for (const e of document.querySelectorAll("svg, iframe, object, embed, style:not([nonce]), img:not(.logo)")) {
    // The portal's own chat widget (/widget/portico-chat.js) opens its panel in a frame of this site.
    if (!(e.tagName === "IFRAME" && e.src.startsWith(location.origin + "/widget/frame?"))) {
      found.push(e.outerHTML.slice(0, 80));
    }
  }
  return found;
}"""


async def inert(page: Page, watch: Watch) -> None:
    assert await page.evaluate("typeof window.__xss") == "undefined", page.url
    assert watch.dialogs == [], page.url
    assert watch.violations == [], (page.url, watch.violations)
    found = await page.evaluate(ACTIVE)
    assert found == [], (page.url, found)


async def visit(page: Page, watch: Watch, path: str, status: int = 200) -> None:
    response = await page.goto(path)
    assert response is not None and response.status == status, (path, response and response.status)
    strict_csp(response)
    await inert(page, watch)


async def texts(locator) -> list[str]:  # type: ignore[no-untyped-def]
    """The elements' text exactly as written (`textContent`: no whitespace folded, U+2028 kept)."""
    return await locator.evaluate_all("els => els.map(e => e.textContent.trim())")


async def tricky_theme(demo) -> None:  # type: ignore[no-untyped-def]
    tricky = view({"primary": "#1a4d8f"}, header=HEADER_XSS, footer=FOOTER_XSS)
    await publish(demo, "Tricky", {v: tricky for v in VIEWS})


async def theme_shown_as_text(page: Page) -> None:
    await expect(page.locator(".theme-header")).to_contain_text("<script>window.__xss = 'header script'</script>")
    await expect(page.locator(".theme-footer")).to_contain_text("<iframe")


async def staff_named(demo, email: str, name: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    created = await demo.admin.post("/api/v1/admin/staff", json={"email": email, "role": "agent",
                                                                 "display_name": name, "password": PASSWORD})
    assert created.status_code == 201, created.text
    client = demo.browser()
    assert (await client.post("/api/v1/staff/session", json={"email": email, "password": PASSWORD})).status_code == 200
    return client


async def customer_named(demo, email: str, name: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    client = demo.browser()
    token = jwt.encode({"email": email, "iat": int(time.time()), "displayName": name, "name": name}, demo.secret,
                       algorithm="HS256")
    assert (await client.post("/api/v1/portals/demo/session/sso", json={"token": token})).status_code == 200
    return client


async def reads_in_order(paragraph, first: str, second: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether `second` is drawn to the right of `first` in `paragraph` (a text's direction override stays
    inside that text, and does not turn the rest of the sentence around)."""
    boxes = await paragraph.evaluate("""(p, words) => words.map(word => {
        const walker = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          const at = n.data.indexOf(word);
          if (at >= 0) { const r = document.createRange(); r.setStart(n, at); r.setEnd(n, at + word.length);
                         const box = r.getBoundingClientRect(); return [box.left, box.right]; }
        }
        return null; })""", [first, second])
    assert None not in boxes, (first, second)
    return boxes[1][0] >= boxes[0][1] - 1


# -- what people write --------------------------------------------------------------------------------

async def test_what_customers_agents_and_admins_write_is_shown_as_text_and_never_runs(demo, chromium) -> None:
    await tricky_theme(demo)
    eve = await customer_named(demo, "eve@example.com", CUSTOMER_NAME)
    mallory = await staff_named(demo, "mallory@example.com", AGENT_NAME)
    settings = await demo.settings_(detail_attributes=[
        {"attribute": "custom.order_number", "display_name": CORPUS["script"]},
        {"attribute": "custom.note", "display_name": CORPUS["attribute"]}])
    assert settings["detail_attributes"][0]["display_name"] == CORPUS["script"]
    ids = {}
    for name, payload in CORPUS.items():
        started = await eve.post("/api/v1/portals/demo/conversations", json={"subject": payload, "body": payload})
        assert started.status_code == 201, started.text
        ids[name] = cid = started.json()["conversation"]["id"]
        answered = await mallory.post(f"/api/v1/agent/conversations/{cid}/messages", data={"body": payload},
                                      files=upload((f"{CORPUS['svg']}.png", sample("png"))))
        assert answered.status_code == 201, answered.text
        assert (await mallory.post(f"/api/v1/agent/conversations/{cid}/attributes", json={
            "values": {"order_number": payload, "note": CORPUS["img"]}})).status_code == 200
    renamed = "Refund \u202eexe.pdf"
    assert (await mallory.post(f"/api/v1/agent/conversations/{ids['unicode']}/subject",
                               json={"subject": renamed})).status_code == 200

    page = await signed_in(chromium, demo, eve)
    watch = Watch(page)
    await visit(page, watch, "/portals/demo/conversations")
    subjects = {**CORPUS, "unicode": renamed}
    assert sorted(await texts(page.locator("#conversation-list .item-title a"))) == sorted(subjects.values())
    previews = set(await texts(page.locator("#conversation-list .preview")))  # on one line
    assert {" ".join(text.split()) for text in CORPUS.values()} <= previews
    assert await texts(page.locator("header.site .who")) == [CUSTOMER_NAME]
    await theme_shown_as_text(page)

    for name, payload in CORPUS.items():
        await visit(page, watch, f"/portals/demo/conversations/{ids[name]}")
        assert await texts(page.locator("h1")) == [subjects[name]]
        assert subjects[name] in await page.title()
        assert await texts(page.locator("#timeline .message.mine .body")) == [payload]
        agent = page.locator("#timeline .message.from-agent")
        assert await texts(agent.locator(".author")) == [AGENT_NAME]
        assert await texts(agent.locator(".body")) == [payload]
        # File names are cleaned by the service (no `<`, `>`, quotes or direction marks); shown as text.
        assert await texts(agent.locator("ul.files a")) == ['%22svg onload=window.__xss=1.png']
        facts = page.locator("#conversation-header .facts .attribute")
        assert await texts(facts.locator("dt")) == [CORPUS["script"], CORPUS["attribute"]]
        assert await texts(facts.locator("dd")) == [payload, CORPUS["img"]]
        await theme_shown_as_text(page)

    # A subject's direction override stays inside the subject: the sentence around it reads on as written.
    await visit(page, watch, f"/portals/demo/conversations/{ids['unicode']}")
    event = page.locator("#timeline .event", has_text="The subject was changed")
    await expect(event).to_contain_text(renamed)
    assert await reads_in_order(event, "evil.exe", " to ")
    assert await reads_in_order(event, "exe.pdf", "”.")

    for payload in CORPUS.values():  # searches, echoed in the search field
        await visit(page, watch, f"/portals/demo/conversations?{urlencode({'q': payload})}")
        await expect(page.get_by_label("Search")).to_have_value(payload)

    # An agent's answer arriving live, while the page is open, is text as well.
    await visit(page, watch, f"/portals/demo/conversations/{ids['script']}")
    everything = "\n".join(CORPUS.values())
    answered = await mallory.post(f"/api/v1/agent/conversations/{ids['script']}/messages", json={"body": everything})
    assert answered.status_code == 201
    await expect(page.locator("#timeline .message.from-agent")).to_have_count(2)
    assert (await texts(page.locator("#timeline .message.from-agent .body")))[-1] == everything
    await inert(page, watch)
    await page.set_viewport_size(PHONE)
    assert await no_horizontal_scroll(page)  # long words in names and subjects wrap
    await screenshots(page, "safety-corpus-conversation")

    for path in ("/portals/demo/", "/portals/demo/login", "/portals/demo/kb"):
        await visit(page, watch, path)
        assert await texts(page.locator("header.site .who")) == [CUSTOMER_NAME]
    await expect(page.locator("header.site .who")).to_have_count(1)

    # A new conversation from the composer: the file names it lists (and refuses) are text.
    await visit(page, watch, "/portals/demo/conversations/new")
    await theme_shown_as_text(page)
    await page.get_by_label("Subject").fill(CORPUS["svg"])
    await page.get_by_label("Your message").fill(CORPUS["img"])
    await page.get_by_label("Attach files (optional)").set_input_files([
        {"name": FILE_NAME, "mimeType": "image/png", "buffer": sample("png")},
        {"name": "<svg onload=window.__xss=1>.exe", "mimeType": "application/octet-stream", "buffer": b"MZ"}])
    assert await texts(page.locator("#composer-file-list .name")) == [FILE_NAME, "<svg onload=window.__xss=1>.exe"]
    await expect(page.locator("#composer-files-error")).to_contain_text(
        "<svg onload=window.__xss=1>.exe cannot be sent")
    await inert(page, watch)
    await page.get_by_role("button", name="Remove <svg onload=window.__xss=1>.exe").click()
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(CORPUS["svg"])
    strict_csp(await page.request.get(page.url))
    assert await texts(page.locator("#timeline .message.mine .body")) == [CORPUS["img"]]
    assert await texts(page.locator("#timeline ul.files a")) == ["img src=x onerror=window.__xss=1.png"]
    await inert(page, watch)

    # Without JavaScript, a refused form comes back with what was typed, as text.
    plain = await signed_in(chromium, demo, eve, javascript=False)
    await plain.goto("/portals/demo/conversations/new")
    await plain.get_by_label("Subject").fill(CORPUS["attribute"])
    await plain.get_by_label("Your message").fill("x" * 10_241)
    async with plain.expect_navigation() as sent:
        await plain.get_by_role("button", name="Send").click()
    refused = await sent.value
    assert refused is not None and refused.status == 422
    strict_csp(refused)
    await expect(plain.get_by_label("Subject")).to_have_value(CORPUS["attribute"])
    assert await plain.evaluate(ACTIVE) == []


async def test_what_the_address_bar_and_the_sign_in_forms_echo_is_text(demo, chromium) -> None:
    await tricky_theme(demo)
    title = f"{CORPUS['svg']} {CORPUS['template']}"  # the start page lists the newest articles' titles
    await write(demo, title, "Body.", slug="tricky")
    page = await chromium.page(demo.base_url)
    watch = Watch(page)
    await visit(page, watch, "/portals/demo/")
    assert await texts(page.locator("ul.articles a")) == [title]
    await theme_shown_as_text(page)
    for payload in CORPUS.values():
        await visit(page, watch, f"/portals/demo/kb?{urlencode({'q': payload})}")
        await expect(page.locator("#kb-q")).to_have_value(payload)
        assert await texts(page.locator("h1")) == [f"Search results for “{payload}”"]
        if await page.locator("#kb-empty").count():  # (the tricky article matches some)
            await expect(page.locator("#kb-empty")).to_contain_text(f"No articles match “{payload}”.")
        await theme_shown_as_text(page)

    # `next` is kept only as a path on this portal, and as text; anything else becomes the start page.
    nexts = {'/portals/demo/"><svg/onload=window.__xss=1>': '/portals/demo/"><svg/onload=window.__xss=1>',
             "/portals/demo/'autofocus/onfocus='window.__xss=1": "/portals/demo/'autofocus/onfocus='window.__xss=1",
             "/portals/demo/{{7*7}}": "/portals/demo/{{7*7}}",
             CORPUS["link"]: "/portals/demo/", CORPUS["attribute"]: "/portals/demo/"}
    for asked, kept in nexts.items():
        await visit(page, watch, f"/portals/demo/login?{urlencode({'next': asked})}")
        await expect(page.locator("#email-form input[name=next]")).to_have_value(kept)
        staff = await page.get_by_role("link", name="Staff sign-in").get_attribute("href")
        assert staff == f"/portals/demo/login/staff?next={quote(kept, safe='/')}"
        await theme_shown_as_text(page)

    # The e-mail field, refused, comes back as typed.
    for payload in (CORPUS["svg"], CORPUS["attribute"], CORPUS["script"]):
        await page.get_by_label("E-mail address").fill(payload)
        async with page.expect_navigation() as sent:
            await page.get_by_role("button", name="Continue", exact=True).click()
        strict_csp(await sent.value)
        assert (await sent.value).status == 422
        await expect(page.get_by_label("E-mail address")).to_have_value(payload)
        await inert(page, watch)
    await visit(page, watch, f"/portals/demo/login/staff?{urlencode({'next': list(nexts)[0]})}")
    await page.get_by_label("E-mail address").fill(CORPUS["svg"])
    await page.get_by_label("Password").fill(CORPUS["attribute"])
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("The e-mail address or the password is not right.")
    await expect(page.get_by_label("E-mail address")).to_have_value(CORPUS["svg"])
    await inert(page, watch)

    # Pages that say something is missing do not echo the address.
    for path in (f"/portals/demo/{quote(CORPUS['script'])}", f"/portals/demo/kb/{quote(CORPUS['svg'])}"):
        await visit(page, watch, path, status=404)
        await theme_shown_as_text(page)
    await visit(page, watch, f"/portals/{quote(CORPUS['svg'])}/", status=404)


# -- no open redirect -----------------------------------------------------------------------------------

OFF_SITE = ["https://evil.example", "//evil.example", "/\\evil.example"]
MORE_OFF_SITE = [*OFF_SITE, "https:evil.example", "\\\\evil.example", "/\t/evil.example", " //evil.example",
                 "http://127.0.0.1:1/portals/demo/", "/portals/demo@evil.example",
                 # same site, but out of this portal once the browser resolves the dots
                 "/portals/demo/../../agent/", "/portals/demo/%2e%2e/other/"]


async def test_signing_in_never_sends_the_browser_to_another_site(demo, sink, company, chromium) -> None:
    page = await chromium.page(demo.base_url)
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url)
            if r.url.startswith("http") and not r.url.startswith(demo.base_url) else None)
    for n, target in enumerate(OFF_SITE):
        await page.context.clear_cookies()
        await page.goto(f"/portals/demo/login?{urlencode({'next': target})}")
        await page.get_by_label("E-mail address").fill(f"away{n}@example.com")
        await page.get_by_role("button", name="Continue", exact=True).click()
        await page.get_by_label("Code", exact=True).fill(await code_for(sink, f"away{n}@example.com"))
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page).to_have_url(f"{demo.base_url}/portals/demo/")
        await expect(page.locator("header.site .who")).to_have_text(f"away{n}@example.com")
    assert elsewhere == []

    # The other ways in: staff, anonymous, a signed-in customer's way on, the company's sign-on.
    await set_portal(demo, anonymous_enabled=True, custom_sign_on_enabled=True, custom_sign_on_redirect_uri=company)
    async with httpx.AsyncClient(base_url=demo.base_url, headers={"Accept": "text/html"}) as browser:
        for target in MORE_OFF_SITE:
            staff = await browser.post("/portals/demo/login/staff", data={
                "email": "agent@example.com", "password": PASSWORD, "next": target})
            anonymous = await browser.post("/portals/demo/login/anonymous", data={"next": target})
            onward = await demo.ana.get(f"/portals/demo/login/code?{urlencode({'next': target})}",
                                        headers={"Accept": "text/html"})
            for answer in (staff, anonymous, onward):
                assert (answer.status_code, answer.headers["location"]) == (303, "/portals/demo/"), (target, answer.url)
            signed_in_page = await demo.ana.get(f"/portals/demo/login?{urlencode({'next': target})}",
                                                headers={"Accept": "text/html"})
            assert '<a class="button" href="/portals/demo/">' in signed_in_page.text, target
        await wait_until(lambda: _to_company(browser, "/portals/demo/kb"))  # the gateway keeps a portal 2 s
        for target in MORE_OFF_SITE:
            assert stays_here(await _to_company(browser, target)), target

    company_page = await chromium.page(demo.base_url)
    await company_page.goto(f"/portals/demo/login?{urlencode({'referralUrl': '//evil.example'})}")
    await expect(company_page.get_by_role("heading", name="Company login")).to_be_visible()
    await company_page.get_by_role("button", name="Sign in as Riley").click()
    await expect(company_page).to_have_url(re.compile(rf"^{re.escape(demo.base_url)}/portals/demo/?$"))
    await expect(company_page.locator("header.site .who")).to_have_text("Riley Company")


def stays_here(location: str | None) -> bool:
    """Whether a browser sent to `location` stays on this site: a path; not `//host` or `/\\host`, which
    browsers read as another host (they also drop tabs and line breaks from a URL first)."""
    cleaned = re.sub(r"[\t\n\r]", "", location or "").strip()
    return cleaned.startswith("/") and not cleaned.startswith(("//", "/\\")) and "\\" not in cleaned


async def _to_company(browser: httpx.AsyncClient, referral: str) -> str | None:
    """Where the company's page is told to send the customer back to, for a sign-on started with `referral`."""
    answer = await browser.get(f"/portals/demo/login?{urlencode({'referralUrl': referral})}")
    if answer.status_code != 303:
        return None
    back = parse_qs(urlsplit(answer.headers["location"]).query)["kustomerRedirectUri"][0]
    assert back.startswith(str(browser.base_url.join("/portals/demo/login?"))), back
    return parse_qs(urlsplit(back).query)["referralUrl"][0]


# -- cross-site forms ------------------------------------------------------------------------------------

@pytest.fixture
async def elsewhere(demo):  # type: ignore[no-untyped-def]
    """Pages on another origin (another port of the same loopback address: the same site, so the browser
    sends the portal's cookie along) that post a form to the portal as soon as they load. Yields the
    origin and the dict of pages by name, to fill in."""
    forms: dict[str, str] = {}

    async def shown(request: Request) -> HTMLResponse:
        return HTMLResponse(forms[request.path_params["name"]])

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/{name}", shown)]), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started)
    yield f"http://127.0.0.1:{port}", forms
    server.should_exit = True
    await task


def auto_post(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (f'<!doctype html><html lang="en"><title>Win a prize</title><form method="post" action="{action}" '
            f'enctype="multipart/form-data">{inputs}</form><script>document.forms[0].submit()</script></html>')


async def test_a_form_posted_from_another_site_is_refused_and_stores_nothing(demo, chromium, elsewhere) -> None:
    origin, forms = elsewhere
    cid = (await start(demo.ana, subject="My printer"))["id"]
    closed = (await start(demo.ana, subject="An old question"))["id"]
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{closed}/close")).status_code == 200
    page = await signed_in(chromium, demo)
    await page.goto(f"/portals/demo/conversations/{cid}")
    await page.goto(f"/portals/demo/conversations/{closed}")
    before = await everything_stored(demo)
    targets = {
        "message": (f"/portals/demo/conversations/{cid}/messages", {"body": "Sent from another site"}),
        "new": ("/portals/demo/conversations/new", {"subject": "From another site", "body": "Hello"}),
        "reopen": (f"/portals/demo/conversations/{closed}/reopen", {}),
        "logout": ("/portals/demo/logout", {}),
    }
    for name, (path, fields) in targets.items():
        forms[name] = auto_post(demo.base_url + path, fields)
        async with page.expect_response(lambda r: r.request.method == "POST") as posted:
            await page.goto(f"{origin}/{name}", wait_until="commit")
        refused = await posted.value
        assert refused.url == demo.base_url + path
        assert refused.status == 403 and (await refused.json())["error"] == "cross_site_request", name
        sent = await refused.request.all_headers()
        assert sent["origin"] == origin and f"{SESSION_COOKIE}=" in sent.get("cookie", ""), name
    await nothing_stored(demo, before)

    # Still signed in, and the conversations as they were.
    assert (await page.request.get("/api/v1/session")).status == 200
    await page.goto(f"/portals/demo/conversations/{cid}")
    await expect(page.locator("#timeline .message")).to_have_count(1)
    await page.goto(f"/portals/demo/conversations/{closed}")
    await expect(page.locator("#conversation-header .badge.closed")).to_be_visible()
