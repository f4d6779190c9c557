"""What every HTTP request passes through before a route: the client's address, the request id and its
log line, and the refusal of cross-site writes.

Plain ASGI middlewares (no `BaseHTTPMiddleware`, which costs a task and a stream per request).
"""

import base64
import json
import os
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from contracts.errors import HTTP_STATUS, ErrorCode
from services.runtime.logging import correlation_id, get_logger

log = get_logger("portico.gateway")

REQUEST_ID_HEADER = "X-Request-Id"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def request_id() -> str:
    """A new request id: a ULID (26 characters, Crockford base32, sorting by time, as
    `contracts.envelope.new_id`), made in a few microseconds: 48 bits of milliseconds and 80 random
    bits, base32 encoded behind 30 zero bits so that the 130 bits of a ULID's 26 characters line up."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return base64.b32encode(b"\0\0\0\0" + raw)[6:].translate(_CROCKFORD).decode()


def client_address(app: ASGIApp, trusted_proxies: list[str]) -> ASGIApp:
    """`scope["client"]` becomes the address that connected, unless that is one of `trusted_proxies`.

    From a trusted proxy, the right-most address of `X-Forwarded-For` that is not itself a trusted proxy
    is the client (each proxy appends the address it saw), and `X-Forwarded-Proto` the scheme
    (MDN X-Forwarded-For, "Security and privacy concerns"). `trusted_proxies`: IPs and CIDRs; `[]`
    believes no forwarding header. The server must not rewrite the address itself: run uvicorn with
    `proxy_headers=False`, as `python -m services.gateway` does.
    """
    if not trusted_proxies:
        return app  # nothing to believe: the connecting address stands, without a check per request
    return ProxyHeadersMiddleware(app, trusted_hosts=list(trusted_proxies))  # type: ignore[arg-type]


class RequestLog:
    """`X-Request-Id` in (when printable and at most 64 characters; else a new id) and out; the id is the
    correlation id of everything the request causes; one structured log line per request (method, path,
    status, duration in ms), never the query string, headers or body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        value = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else request_id()
        status = 500  # unless the app answers
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        token = correlation_id.set(value)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)
            log.info("request", method=scope["method"], path=scope["path"], status=status,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2), correlation_id=value)


class CrossSiteGuard:
    """Refuses a state-changing request (any method but GET, HEAD, OPTIONS, TRACE) that a browser sent
    from another site: `403 cross_site_request`, before any route runs (so before a cookie is read
    or a body parsed). Protects every cookie-authenticated write and the sign-in endpoints (login CSRF).

    Same origin: `Origin` equals the origin of `public_url` or `<scheme>://<Host>` of the request.
    With no `Origin`, `Sec-Fetch-Site` must be `same-origin` or `none`. With neither header (curl, a
    server), the request passes: only browsers send cookies on their own, and they send these headers.
    A request with an `Authorization` header (API key, bearer token) passes: a browser never adds one
    by itself. (OWASP CSRF Prevention Cheat Sheet, "Verifying Origin With Standard Headers" and
    "Fetch Metadata"; RFC 6454 for the origin.)
    """

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        self.public_origin = _origin(public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and not self._allowed(scope):
            await _refuse(send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        if _header(scope, b"authorization"):
            return True
        origin = _header(scope, b"origin")
        if origin:
            request_origin = _origin(f"{scope.get('scheme', 'http')}://{_header(scope, b'host')}")
            return _origin(origin) in {self.public_origin, request_origin} - {None}
        fetch_site = _header(scope, b"sec-fetch-site")
        return not fetch_site or fetch_site.lower() in SAME_ORIGIN_FETCH


async def _refuse(send: Send) -> None:
    code = ErrorCode.cross_site_request
    body = json.dumps({"error": code.value, "message": "A page on another site may not change anything here; "
                       "use the portal's own pages, or an API key in the Authorization header."}).encode()
    await send({"type": "http.response.start", "status": HTTP_STATUS[code],
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"vary", b"Origin, Sec-Fetch-Site")]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").strip()
    return ""


def _origin(url: str) -> str | None:
    """`scheme://host[:port]`, lower case, without the scheme's default port; None when `url` has none
    (such as the `null` origin of sandboxed frames and privacy-sensitive redirects)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")
