"""What every page of the agent workspace (`/agent/…`) and the admin console (`/admin/…`) shares: who
the staff member is and what their role lets them open, rendering in the console's frame, and
refusals as pages.

Roles and permissions come from `contracts/roles.py`, and every operation a page calls is checked
again by the service that owns it; the checks here only decide what the console offers and refuse a
page early (a customer's cookie or an agent on an admin page: 403).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from contracts.errors import ErrorCode, ServiceError
from contracts.roles import Permission, can
from contracts.rpc import Actor
from contracts.sessions import SessionRecord
from services.gateway.auth import read_session
from services.gateway.web.pages import climbs
from services.gateway.web.rendering import gettext, render
from services.gateway.web.words import say

STAFF_LOGIN = "/agent/login"


@dataclass(frozen=True)
class Staff:
    """A signed-in staff member: `record` is their session; `actor` is what operations are called as."""

    record: SessionRecord
    token: str

    @property
    def actor(self) -> Actor:
        return Actor(org_id=self.record.org_id, role=self.record.role or "", principal=f"user:{self.record.user_id}")

    @property
    def user_id(self) -> str:
        return self.record.user_id

    @property
    def name(self) -> str:
        return self.record.display_name or self.record.email or ""

    def can(self, permission: Permission | str) -> bool:
        return can(self.record.role, Permission(permission))


async def require_staff(request: Request, permission: Permission) -> Staff:
    """The staff member signed in, if their role has `permission`.

    Raises `ServiceError`: `unauthorized` when nobody is signed in (pages turn it into the staff
    sign-in, coming back afterwards), `forbidden` (403) for a customer's or anonymous session and for a
    role without `permission`."""
    found = await read_session(request)
    if found is None:
        raise ServiceError(ErrorCode.unauthorized, "Sign in as staff.")
    token, record = found
    if record.kind != "staff":
        raise ServiceError(ErrorCode.forbidden, "Only staff may open the agent workspace and the admin console.")
    staff = Staff(record=record, token=token)
    if not staff.can(permission):
        raise ServiceError(ErrorCode.forbidden, "Your role does not let you open this page.")
    return staff


def staff_page(request: Request, staff: Staff | None, template: str, *, section: str = "", status: int = 200,
               **context: Any) -> HTMLResponse:
    """Render `template` (under `templates/staff/`) in the console's frame."""
    return render(request, template, {"staff": staff, "section": section, "Permission": Permission, **context},
                  status=status)


def safe_staff_next(value: str | None) -> str:
    """Where to go after the staff sign-in: a console path only (never another site), else the inbox."""
    if not value or len(value) > 2000 or "\\" in value or any(ord(c) < 33 for c in value):
        return "/agent/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or climbs(parts.path) \
            or not (parts.path.startswith("/agent/") or parts.path.startswith("/admin/")):
        return "/agent/"
    return value


async def staff_error(request: Request, error: ServiceError) -> Response:
    """A refusal on a console page: signed out → the staff sign-in with `next`; otherwise a page in the
    console's frame with the error's status and what it means."""
    if error.code in (ErrorCode.unauthorized, ErrorCode.session_expired) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{STAFF_LOGIN}?next={quote(target, safe='/')}", status_code=303)
    staff = None
    found = await read_session(request)
    if found is not None and found[1].kind == "staff":
        staff = Staff(record=found[1], token=found[0])
    title = gettext(request, "Not found") if error.status == 404 else (
        gettext(request, "No access") if error.status == 403 else gettext(request, "Sorry"))
    response = staff_page(request, staff, "staff/error.html", status=error.status, title=title,
                          message=say(request, error))
    if error.retry_after:
        response.headers["Retry-After"] = str(error.retry_after)
    return response
