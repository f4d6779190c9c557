"""What the portal's page tests share: signing in through the pages, writing articles, reading the
e-mailed code, counting what is stored, watching a page for script that must not run."""

import asyncio
import httpx
import jwt
import pytest
import re
import time
import uvicorn
from collections.abc import AsyncIterator
from playwright.async_api import Page, Response
from services.runtime.nats import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route
from tests.helpers import settled_counts, wait_until
from tests.kit.sign_in import sign
from tests.kit.uploads import stored_objects
from urllib.parse import urlencode

SERVICES = ("auth", "conversations", "notifications", "kb")

ADMIN_ARTICLES = "/api/v1/admin/portals/demo/kb/articles"

SWITCHES = "/api/v1/admin/portals/demo/kb/settings"

STAFF_PASSWORD = "a-long-staff-password"

LIBRARY = [
    ("Reset your password", "account", "public",
     "Forgot your password? Open the sign-in page, choose **Forgot password** and follow the link we e-mail "
     "you. The link works for 30 minutes.\n\n1. Open the sign-in page\n2. Choose *Forgot password*\n"
     "3. Follow the link in the e-mail"),
    ("Change the e-mail address of your account", "account", "public",
     "Go to **Settings → Profile**, enter the new address and confirm it from the e-mail we send there."),
    ("Where is my invoice?", "billing", "public", "Invoices are in **Billing → Invoices** as PDF."),
    ("Refunds: how long do they take?", "billing", "public",
     "Refunds reach your card within 5 to 10 business days after we confirm them."),
    ("Internal: issuing a goodwill credit", "billing", "internal",
     "Agents may credit up to 20 EUR without approval. Add an internal note with the reason."),
]

ACTIVE = """() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
    .filter(a => a.name.startsWith('on') || /^\\s*(javascript|vbscript|data:text)/i.test(a.value))
    .map(a => e.tagName + ' ' + a.name + '=' + a.value))"""

SCRIPTS = "() => [...document.scripts].map(s => s.getAttribute('src') || 'inline: ' + s.textContent)"

THEME = "/api/v1/admin/portals/demo/theme"


async def nothing_stored(demo, before: tuple[dict, frozenset[str]]) -> None:  # type: ignore[no-untyped-def]
    rows, files = await everything_stored(demo)
    changed = {(url.rsplit("/", 1)[-1], table): (before[0][url].get(table), count)
               for url, tables in rows.items() for table, count in tables.items() if before[0][url].get(table) != count}
    assert changed == {} and files == before[1], (changed, files - before[1])


async def everything_stored(demo) -> tuple[dict, frozenset[str]]:  # type: ignore[no-untyped-def]
    """Rows of every table of every service, and the files in the attachments bucket."""
    urls = [demo.settings.database_url(s) for s in SERVICES]
    return await settled_counts(urls), await stored_objects(demo.settings.nats_url)


async def signed_in(chromium, demo, client: httpx.AsyncClient | None = None, **options) -> Page:  # type: ignore[no-untyped-def]
    """A browser page with the session of `client` (Ana by default), as if she had signed in there."""
    page = await chromium.page(demo.base_url, **options)
    client = client or demo.ana
    await page.context.add_cookies([{"name": name, "value": value, "url": demo.base_url}
                                    for name, value in client.cookies.items()])
    return page


async def inert(page: Page, dialogs: list[str]) -> None:
    assert await page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []
    assert await page.evaluate(ACTIVE) == []
    # Our own files only: the pages' scripts, and the chat widget's SDK (services/gateway/web/widget).
    assert all(src.startswith(("/static/", "/widget/")) for src in await page.evaluate(SCRIPTS))


async def library(demo) -> None:  # type: ignore[no-untyped-def]
    for title, category, visibility, body in LIBRARY:
        await write(demo, title, body, category=category, visibility=visibility)
    switched = await demo.admin.patch(SWITCHES, json={"portal_for_agents": True, "internal_kb": True})
    assert switched.status_code == 200, switched.text


async def write(demo, title: str, body: str, *, category: str | None = None,  # type: ignore[no-untyped-def]
                visibility: str = "public", published: bool = True, slug: str | None = None) -> dict:
    response = await demo.admin.post(ADMIN_ARTICLES, json={
        "title": title, "body": body, "category": category, "visibility": visibility, "published": published,
        **({"slug": slug} if slug else {})})
    assert response.status_code == 201, response.text
    return response.json()["article"]


async def sign_in_staff(page: Page, demo, email: str, role: str) -> None:  # type: ignore[no-untyped-def]
    """A new staff member of the demo org, signed in with the staff sign-in in the page's browser context."""
    created = await demo.admin.post("/api/v1/admin/staff", json={
        "email": email, "role": role, "display_name": role.replace("_", " ").title(), "password": STAFF_PASSWORD})
    assert created.status_code == 201, created.text
    response = await page.context.request.post("/api/v1/staff/session", data={"email": email,
                                                                               "password": STAFF_PASSWORD})
    assert response.status == 200, await response.text()


async def sign_in_customer(page: Page, demo, email: str = "ana@example.com") -> None:  # type: ignore[no-untyped-def]
    """The customer signed in by SSO in the page's browser context (its cookie jar)."""
    token = jwt.encode({"email": email, "iat": int(time.time()), "displayName": email.split("@")[0]}, demo.secret,
                       algorithm="HS256")
    response = await page.context.request.post("/api/v1/portals/demo/session/sso", data={"token": token})
    assert response.status == 200, await response.text()


INTERNAL = "internal-issuing-a-goodwill-credit"


def strict_csp(response: Response | httpx.Response | None) -> None:
    """The page's Content-Security-Policy: scripts from the site only (no inline script, no `eval`), styles
    from the site or with the response's nonce, no plugins, no framing, no `<base>` elsewhere."""
    assert response is not None
    policy = response.headers["content-security-policy"]
    rules = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert rules["script-src"] == ["'self'"], policy
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "https:"} & set(rules["style-src"]), policy
    assert rules["object-src"] == ["'none'"] and rules["base-uri"] == ["'none'"], policy
    assert rules["frame-ancestors"] == ["'none'"], policy


class Watch:
    """What a page did that it must not: dialogs opened, Content-Security-Policy violations reported."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.violations: list[str] = []

        async def dialog(opened) -> None:  # type: ignore[no-untyped-def]
            self.dialogs.append(opened.message)
            await opened.dismiss()

        page.on("dialog", dialog)
        page.on("console", lambda message: self.violations.append(message.text)
                if "Content Security Policy" in message.text else None)


async def code_for(sink, address: str, after: int = 0) -> str:  # type: ignore[no-untyped-def]
    """The code of the newest sign-in e-mail to `address`, once more than `after` of them have come."""
    await wait_until(lambda: len(sink.to(address)) > after)
    return re.search(r"\b(\d{6})\b", sink.to(address)[-1].get_content()).group(1)  # type: ignore[union-attr]



@pytest.fixture
async def company(demo) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """The company's own login page, on another origin: it signs the customer in and sends them back to the
    portal with a token signed with the portal's secret. Its URL is the portal's Redirect URI."""
    async def login(request: Request) -> HTMLResponse:
        back = request.query_params["kustomerRedirectUri"]
        return HTMLResponse(
            "<!doctype html><html lang=en><title>Company login</title><h1>Company login</h1>"
            f"<form method=post><input type=hidden name=back value='{back}'>"
            "<button>Sign in as Riley</button></form></html>")

    async def signed(request: Request) -> RedirectResponse:
        back = str((await request.form())["back"])
        token = sign(demo.secret, email="riley@company.example", displayName="Riley Company")
        return RedirectResponse(f"{back}&{urlencode({'externalToken': token})}", status_code=303)

    app = Starlette(routes=[Route("/login", login), Route("/login", signed, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started)
    # The portal returns the browser to the URL people reach it at (PORTICO_PUBLIC_URL): here, the test's gateway.
    demo.settings.public_url = demo.base_url
    yield f"http://localhost:{port}/login"
    server.should_exit = True
    await task


async def set_portal(demo, **values: object) -> None:  # type: ignore[no-untyped-def]
    response = await demo.admin.patch("/api/v1/admin/portals/demo/settings", json=values)
    assert response.status_code == 200, response.text


FOOTER_XSS = "\n\n".join([
    '<iframe srcdoc="<script>parent.__xss=\'iframe\'</script>"></iframe>',
    '<a href="javascript:window.__xss=\'footer\'" autofocus onfocus="window.__xss=\'focus\'">x</a>',
    "</div></footer><script>window.__xss='break out'</script>",
    "[privacy](https://acme.example/privacy)",
])


HEADER_XSS = "\n\n".join([
    "<script>window.__xss = 'header script'</script>",
    '<img src=x onerror="window.__xss = \'header img\'">',
    "[help](javascript:window.__xss='header link')",
    '<svg onload="window.__xss = \'svg\'"></svg>',
    "**Acme** help",
])


async def publish(demo, name: str, views: dict[str, dict]) -> None:  # type: ignore[no-untyped-def]
    saved = await demo.admin.put(f"{THEME}/draft", json={"name": name, "version": 3, "views": views})
    assert saved.status_code == 200, saved.text
    published = await demo.admin.post(f"{THEME}/publish")
    assert published.status_code == 200, published.text


def view(colours: dict[str, str], **values: str) -> dict:
    return {"base_template": "standard", "colours": colours, "custom_css": "", "header": "", "footer": "", **values}


VIEWS = ("home", "article", "my_conversations", "conversation_detail")

