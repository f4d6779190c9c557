"""Shared by the page routes: rendering with the portal and visitor, redirects after POST, and turning a
service's refusal into a page (or a redirect to sign in)."""

from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from contracts.errors import ErrorCode, ServiceError
from services.gateway.web.portal import PREVIEW_COOKIE, PREVIEW_SECONDS, Portal, Visitor, page_portal
from services.gateway.web.rendering import gettext, render
from services.gateway.web.words import say

PAGE_PREFIX = "/portals/"
STAFF_PREFIXES = ("/agent/", "/admin/")


def is_page(request: Request) -> bool:
    """Whether the request is for a page (HTML), not the JSON API: the portal's or the staff console's."""
    path = request.url.path
    return path.startswith(PAGE_PREFIX) or path.startswith(STAFF_PREFIXES) or path in ("/agent", "/admin")


def portal_page(request: Request, portal: Portal, visitor: Visitor, template: str, *, view: str,
                section: str = "", status: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` inside the portal's frame with `view`'s theme. An editor's `?preview=draft` is
    remembered in a cookie on this portal's pages; `?preview=off` forgets it."""
    response = render(request, template, {"portal": portal, "visitor": visitor, "view": view, "section": section,
                                          **context}, status=status)
    asked, path = request.query_params.get("preview"), f"/portals/{portal.slug}/"
    if asked == "draft" and portal.preview:
        response.set_cookie(PREVIEW_COOKIE, "draft", max_age=PREVIEW_SECONDS, path=path, httponly=True,
                            samesite="lax")
    elif asked == "off":
        response.delete_cookie(PREVIEW_COOKIE, path=path)
    return response


def see_other(location: str) -> RedirectResponse:
    """The redirect after a POST (303: the browser then GETs `location`)."""
    return RedirectResponse(location, status_code=303)


def safe_next(portal: str, value: str | None) -> str:
    """Where to go after signing in: a path on this portal only (never another site), else its home."""
    home = f"/portals/{portal}/"
    if not value or len(value) > 2000 or "\\" in value or any(ord(c) < 33 for c in value):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"/portals/{portal}/") or climbs(parts.path):
        return home
    return value


def climbs(path: str) -> bool:
    """Whether `path` has a `.` or `..` segment (also percent-encoded), which a browser resolves before
    following it: `/portals/demo/../../agent/` is not a path of portal demo (RFC 3986 §5.2.4)."""
    return any(segment in (".", "..") for segment in unquote(path).split("/"))


def login_url(portal: str, next_path: str) -> str:
    return f"/portals/{portal}/login?next={quote(next_path, safe='/')}"


async def page_error(request: Request, error: ServiceError) -> Response:
    """A refusal on a page: signed out → the login page, coming back here afterwards; otherwise a page
    that says what happened in the customer's words, with the error's status. On the staff console's
    pages, the same in the staff console's frame (`staff.staff_error`)."""
    if not request.url.path.startswith(PAGE_PREFIX):
        from services.gateway.web.console.staff import staff_error

        return await staff_error(request, error)
    slug = request.path_params.get("portal") or request.url.path[len(PAGE_PREFIX):].split("/")[0]
    if error.code in (ErrorCode.unauthorized, ErrorCode.session_expired) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(login_url(slug, target), status_code=303)
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    try:
        portal, visitor = await page_portal(request, slug)
    except (ServiceError, ValidationError):  # no such portal, or a slug no portal can have (too long)
        response = render(request, "portal/no_portal.html", {"message": say(request, error)}, status=error.status)
        return response
    title = gettext(request, "Not found") if error.status == 404 else gettext(request, "Sorry")
    response = portal_page(request, portal, visitor, "portal/error.html", view="home", status=error.status,
                           title=title, message=say(request, error), retry_after=None)
    if headers:
        response.headers.update(headers)
    return response


__all__ = ["is_page", "page_error", "page_portal", "portal_page", "see_other", "safe_next", "login_url"]
