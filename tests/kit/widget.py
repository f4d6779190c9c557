"""For the chat widget's browser tests: a Chromium that blocks third-party cookies, the example company
site (`docs/examples/widget/company.py`) on another host name than Portico, a "lab" site that is
allowed to embed the widget and an "evil" one that is not, a second gateway, and a gate that holds
back the conversations service's linking of identities.

Portico runs on `http://127.0.0.1:<port>`; the sites on `http://localhost:<port>`: another host, so
another site for the browser, and the widget's frame is a third-party frame there.
"""

import importlib.util
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from playwright.async_api import Frame, FrameLocator, Page, async_playwright

from services.runtime.nats import free_port
from tests.kit.browser import CHROMIUM, CHROMIUM_ARGS, Chromium, chromium_missing
from tests.kit.live import another_gateway  # noqa: F401  (the widget tests take it from here)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "widget" / "company.py"
PANEL = "#portico-chat-frame"
BUTTON_NAME = "Chat with the virtual assistant"


def company_module() -> Any:
    spec = importlib.util.spec_from_file_location("widget_company_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def token(secret: str, email: str, **claims: object) -> str:
    """A token as a company's backend signs it (`iat` now, a fresh `jti`), with `claims` on top."""
    body: dict[str, object] = {"email": email, "iat": int(time.time()), "jti": uuid.uuid4().hex,
                               "displayName": email.split("@")[0].title()}
    body.update(claims)
    return jwt.encode(body, secret, algorithm="HS256")


class StrictChromium(Chromium):
    """Chromium with third-party cookies blocked as Chrome's phase-out blocks them."""

    async def start(self) -> "StrictChromium":
        self._playwright = await async_playwright().start()
        self.browser = await self._playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, "--test-third-party-cookie-phaseout"])
        return self


@pytest.fixture
async def strict() -> AsyncIterator[StrictChromium]:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    browser = await StrictChromium().start()
    yield browser
    await browser.stop()


LAB_PAGES = {
    # The SDK loaded, `init` not called: a test calls the API itself.
    "/blank": '<!doctype html><html lang="en"><title>Lab</title><script src="{portico}/widget/portico-chat.js">'
              '</script><main><h1>Lab</h1></main>',
    # The frame embedded directly, naming `host` as its embedding page.
    "/embed": '<!doctype html><html lang="en"><title>Embed</title><main><h1>Embed</h1><iframe id="f" title="chat" '
              'src="{portico}/widget/frame?portal=demo&amp;host={host}"></iframe></main>',
    # Put inside another site's page: writes to that page's first frame (the widget) and notes replies.
    "/intruder": '<!doctype html><html lang="en"><title>Intruder</title><p id="heard"></p><p id="sent"></p><script>'
                 'window.addEventListener("message", function (e) {{ document.getElementById("heard").textContent '
                 '+= e.origin + " "; }});'
                 'var target = window.parent.frames[0];'
                 'target.postMessage({{portico: "chat/1", type: "logout", id: 1}}, "*");'
                 'target.postMessage({{portico: "chat/1", type: "login", id: 2, token: "x"}}, "*");'
                 'document.getElementById("sent").textContent = "sent";</script>',
}


class _Lab(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        page = LAB_PAGES.get(path)
        if page is None:
            self.send_error(404)
            return
        host = dict(part.split("=", 1) for part in query.split("&") if "=" in part).get("host", "")
        body = page.format(portico=self.server.portico, host=host).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Sites:
    shop: str
    lab: str
    evil: str


def _serve(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


@pytest.fixture
async def sites(demo) -> AsyncIterator[Sites]:  # type: ignore[no-untyped-def]
    """The example shop and the lab site, both allowed by the portal's `widget_origins`; the evil site not."""
    ports = {name: free_port() for name in ("shop", "lab", "evil")}
    found = Sites(**{name: f"http://localhost:{port}" for name, port in ports.items()})
    response = await demo.admin.patch("/api/v1/admin/portals/demo/settings",
                                      json={"widget_origins": [found.shop, found.lab]})
    assert response.status_code == 200, response.text
    await knowledge_base(demo)
    shop = company_module().make_server(demo.base_url, "demo", demo.secret, ports["shop"])
    servers = [shop]
    for name in ("lab", "evil"):
        server = ThreadingHTTPServer(("127.0.0.1", ports[name]), _Lab)
        server.portico = demo.base_url  # type: ignore[attr-defined]
        servers.append(server)
    for server in servers:
        _serve(server)
    yield found
    for server in servers:
        server.shutdown()
        server.server_close()


async def knowledge_base(demo) -> None:  # type: ignore[no-untyped-def]
    """The demo portal's articles (`services.kb.seed.ARTICLES`: four public, one internal), published."""
    from services.kb.seed import ARTICLES

    for title, category, visibility, body in ARTICLES:
        response = await demo.admin.post("/api/v1/admin/portals/demo/kb/articles", json={
            "title": title, "body": body, "category": category, "visibility": visibility, "published": True})
        assert response.status_code == 201, response.text


async def open_panel(page: Page) -> FrameLocator:
    """Click the chat button; the panel's frame once its composer shows."""
    await page.get_by_role("button", name=BUTTON_NAME).click()
    panel = page.frame_locator(PANEL)
    await panel.locator("#message").wait_for(state="visible")
    return panel


def frame_of(page: Page) -> Frame:
    """The widget's frame (for evaluating inside it, as only a test does)."""
    return next(frame for frame in page.frames if "/widget/frame" in frame.url)


async def ask(panel: FrameLocator, text: str) -> None:
    await panel.get_by_label("Your question").fill(text)
    await panel.get_by_label("Your question").press("Enter")


class LinkGate:
    """Holds the conversations service's `IdentityLinked` handler while closed (open by default): the
    new account and its linking are then still on their way, as on a busy system."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.waiting = threading.Event()

    def wrap(self, handler: Callable[..., None]) -> Callable[..., None]:
        def gated(*args: object) -> None:
            if not self.open.is_set():
                self.waiting.set()
                self.open.wait(timeout=60)
            handler(*args)
        return gated


@pytest.fixture
def link_gate() -> Iterator[LinkGate]:
    gate = LinkGate()
    yield gate
    gate.open.set()  # a test that failed with the gate closed does not hold the service's stop


@pytest.fixture
async def stack(settings, start_service, link_gate, monkeypatch):  # type: ignore[no-untyped-def]
    """The four services as `tests.conftest.stack` starts them, conversations' linking behind `link_gate`."""
    from services.auth.app import build as auth
    from services.conversations import consumers
    from services.conversations.app import build as conversations
    from services.kb.app import build as kb
    from services.notifications.app import build as notifications

    monkeypatch.setattr(consumers, "link_identity", link_gate.wrap(consumers.link_identity))
    return {name: await start_service(build, settings) for name, build in
            (("auth", auth), ("conversations", conversations), ("notifications", notifications), ("kb", kb))}


