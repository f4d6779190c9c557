"""A tiny company website with its own login and Portico's chat on it (README, "Chat widget").

    make run                                              # Portico on http://127.0.0.1:8000
    .venv/bin/python docs/examples/widget/company.py      # the shop on http://localhost:8080

At start it reads the demo's `org.admin` API key from `var/demo-credentials.json`, fetches the portal's
secret with it, and adds its own origin to the portal's widget origins (both through Portico's admin
API). Then it serves the shop: `GET /` (its page, with the chat), `POST /login` and `POST /logout` (its
own login: any e-mail, no password, it is a demo), `GET /portico-token` (a token for
`PorticoChat.sso.login`, signed with the portal's secret: `portico_token` below is all a company's
backend needs) and `GET /shop.js` (the page's script). Only the standard library and PyJWT.
"""

import argparse
import html
import json
import os
import secrets
import time
import urllib.request
import uuid
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import jwt

HERE = Path(__file__).parent


def portico_token(secret: str, email: str, name: str | None = None) -> str:
    """The company's backend signs who is logged in, for `PorticoChat.sso.login(token)`: HS256 with the
    portal's secret, valid five minutes, usable once (`jti`)."""
    now = int(time.time())
    claims = {"email": email, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    if name:
        claims["displayName"] = name
    return jwt.encode(claims, secret, algorithm="HS256")


def admin(portico: str, key: str, method: str, path: str, body: dict | None = None) -> dict:
    """Portico's admin API with the `org.admin` key."""
    request = urllib.request.Request(portico + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def prepare(portico: str, key: str, portal: str, origin: str) -> str:
    """The portal's secret, after adding `origin` to the sites allowed to embed its chat."""
    found = admin(portico, key, "GET", f"/api/v1/admin/portals/{portal}")
    origins = list(found["settings"].get("widget_origins") or [])
    if origin not in origins:
        admin(portico, key, "PATCH", f"/api/v1/admin/portals/{portal}/settings",
              {"widget_origins": [*origins, origin]})
    settings = admin(portico, key, "GET", f"/v1/auth/kb/{found['kb_id']}/settings")
    return settings["data"]["attributes"]["secret"]


PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Example Shop</title>
  <link rel="stylesheet" href="/shop.css">
  <script src="{portico}/widget/portico-chat.js" defer></script>
  <script src="/shop.js" defer></script>
</head>
<body data-portal="{portal}" data-signed-in="{signed_in}">
  <header><h1>Example Shop</h1></header>
  <main>{account}
    <p>Questions about an order? Use the chat button at the bottom right.</p>
  </main>
</body>
</html>
"""

LOGIN_FORM = """
    <form method="post" action="/login" id="login">
      <h2>Log in to the shop</h2>
      <label for="email">E-mail</label> <input id="email" name="email" type="email" required>
      <label for="name">Name</label> <input id="name" name="name">
      <button type="submit">Log in</button>
    </form>"""

SIGNED_IN = """
    <p id="account">Logged in as {email}.</p>
    <form method="post" action="/logout" id="logout"><button type="submit">Log out</button></form>"""


class Shop(BaseHTTPRequestHandler):
    """The shop's pages; `server.config` holds Portico's URL, the portal, its secret and the logins."""

    def _user(self) -> dict | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        token = cookie["shop_session"].value if "shop_session" in cookie else ""
        return self.server.config["logins"].get(token)  # type: ignore[attr-defined]

    def _send(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        config, user = self.server.config, self._user()  # type: ignore[attr-defined]
        if self.path == "/":
            account = SIGNED_IN.format(email=html.escape(user["email"])) if user else LOGIN_FORM
            page = PAGE.format(portico=html.escape(config["portico"]), portal=html.escape(config["portal"]),
                               signed_in="yes" if user else "", account=account)
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif self.path in ("/shop.js", "/shop.css"):
            kind = "text/javascript" if self.path.endswith(".js") else "text/css"
            self._send(200, (HERE / self.path[1:]).read_bytes(), f"{kind}; charset=utf-8")
        elif self.path == "/portico-token":
            if user is None:
                self._send(401, b'{"error": "not logged in"}', "application/json")
                return
            token = portico_token(config["secret"], user["email"], user["name"])
            self._send(200, json.dumps({"token": token}).encode(), "application/json", {"Cache-Control": "no-store"})
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        logins = self.server.config["logins"]  # type: ignore[attr-defined]
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        cookie = ""
        if self.path == "/login" and form.get("email", [""])[0].strip():
            token = secrets.token_urlsafe(24)
            logins[token] = {"email": form["email"][0].strip(), "name": form.get("name", [""])[0].strip() or None}
            cookie = f"shop_session={token}; HttpOnly; SameSite=Lax; Path=/"
        elif self.path == "/logout":
            cookie = "shop_session=; Max-Age=0; Path=/"
        self._send(303, b"", "text/plain", {"Location": "/", **({"Set-Cookie": cookie} if cookie else {})})

    def log_message(self, format: str, *args: object) -> None:
        pass


def make_server(portico: str, portal: str, secret: str, port: int, bind: str = "127.0.0.1") -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((bind, port), Shop)
    server.config = {"portico": portico.rstrip("/"), "portal": portal, "secret": secret,  # type: ignore[attr-defined]
                     "logins": {}}
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portico", default=os.environ.get("PORTICO_PUBLIC_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--portal", default="demo")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--credentials", default=str(Path(os.environ.get("PORTICO_DATA_DIR", "var"))
                                                      / "demo-credentials.json"))
    options = parser.parse_args()
    key = json.loads(Path(options.credentials).read_text())["api_key"]
    # Another host name than Portico's: the browser treats the shop as another site (third-party frame).
    origin = f"http://localhost:{options.port}"
    secret = prepare(options.portico.rstrip("/"), key, options.portal, origin)
    print(f"Example Shop on {origin} (chat of portal '{options.portal}' at {options.portico})")
    make_server(options.portico, options.portal, secret, options.port).serve_forever()


if __name__ == "__main__":
    main()
