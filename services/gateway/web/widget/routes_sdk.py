"""The SDK a company's page loads, `GET /widget/portico-chat.js` (defines `window.PorticoChat`), its
TypeScript declarations `GET /widget/portico-chat.d.ts`, and the frame's own files under
`/widget/static/`.

Caching: every file has a version, the start of the SHA-256 of its content (`VERSIONS`).
`portico-chat.js?v=<its version>` is kept for a year (`immutable`): a new release is a new URL. Without
`?v=` (the address a company copies once), or with another version, it is kept an hour and then
revalidated with its `ETag`, so a new release reaches every site within the hour. The frame page is
never cached (it is rendered for each load) and names its scripts and styles with their versions.
"""

import hashlib
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

router = APIRouter(tags=["chat widget"])

STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/widget/static"
LONG_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=3600"
SERVED = {"portico-chat.js": "text/javascript; charset=utf-8",
          "portico-chat.d.ts": "application/typescript; charset=utf-8"}


def _version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


VERSIONS = {path.name: _version(path) for path in STATIC.iterdir() if path.is_file()}


def asset_url(name: str) -> str:
    """The frame's own static file `name` at its current version."""
    return f"{STATIC_PATH}/{name}?v={VERSIONS[name]}"


def _serve(request: Request, name: str, asked: str | None) -> Response:
    version = VERSIONS[name]
    etag = f'"{version}"'
    headers = {"Cache-Control": LONG_CACHE if asked == version else SHORT_CACHE, "ETag": etag,
               "X-Content-Type-Options": "nosniff", "X-Portico-Widget-Version": version,
               # Loaded by other sites' pages, including ones that require it of every resource (COEP).
               "Cross-Origin-Resource-Policy": "cross-origin"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response((STATIC / name).read_bytes(), media_type=SERVED[name], headers=headers)


VersionQuery = Query(default=None, max_length=40, description="The file's version: with the current one the "
                                                             "answer may be kept for a year.")


@router.get("/widget/portico-chat.js", include_in_schema=False)
async def sdk(request: Request, v: str | None = VersionQuery) -> Response:
    return _serve(request, "portico-chat.js", v)


@router.get("/widget/portico-chat.d.ts", include_in_schema=False)
async def sdk_types(request: Request, v: str | None = VersionQuery) -> Response:
    return _serve(request, "portico-chat.d.ts", v)
