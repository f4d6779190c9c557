"""A portal's SSO secrets in the admin console (admins only):

- `GET /admin/portals/{portal}/secrets`: the secrets' key ids and states (never their values), the
  Kustomer-compatible settings URL with the portal's `kb_id`, and the rotation form;
- `POST /admin/portals/{portal}/secrets`: rotate. The new secret is in this answer's page only (read-only,
  copyable), never in a URL, a redirect or a log; the current secrets keep working for the grace period;
- `GET|POST /admin/portals/{portal}/secrets/{kid}/revoke`: a confirmation, then the secret stops at once.

The operations are those of `POST /api/v1/admin/portals/{portal}/secrets` and `DELETE …/secrets/{kid}`.
"""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.roles import Permission
from contracts.rpc import GetPortal, NewSecret, PortalView, RevokeSecret, RotateSecret
from services.gateway.web.console.admin_settings_forms import WHOLE
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.rendering import gettext
from services.gateway.web.words import _, say

router = APIRouter(include_in_schema=False)

PortalSlug = Path(min_length=1, max_length=100)
Kid = Path(min_length=1, max_length=40)
GRACE_WORDS = _("Enter a whole number of minutes from 0 to 43200 (30 days).")
SENT_TWICE = _("This form was already sent: a new secret was made after this page was shown, and nothing "
               "more was changed. If you did not copy that secret, make another one.")


@router.get("/admin/portals/{portal}/secrets", response_class=HTMLResponse)
async def secrets_page(request: Request, portal: str = PortalSlug) -> Response:
    staff = await require_staff(request, Permission.administer)
    notice = gettext(request, "The secret was revoked.") if request.query_params.get("revoked") else ""
    return await _render(request, staff, portal, notice=notice)


@router.post("/admin/portals/{portal}/secrets", response_class=HTMLResponse)
async def rotate(request: Request, portal: str = PortalSlug,
                 grace_minutes: str = Form(default="", max_length=20),
                 replaces: str | None = Form(default=None, max_length=100)) -> Response:
    staff = await require_staff(request, Permission.administer)
    typed = grace_minutes.strip()
    try:
        if not WHOLE.fullmatch(typed):
            raise ValueError(typed)
        ask = RotateSecret(actor=staff.actor, portal=portal, grace_minutes=int(typed), replaces=replaces or None)
    except (ValueError, ValidationError):
        return await _render(request, staff, portal, grace=grace_minutes, status=422,
                             errors={"grace_minutes": gettext(request, GRACE_WORDS)})
    try:
        created = await request.app.state.rpc.call(operations.auth.rotate_secret, ask)
    except ServiceError as error:
        words = gettext(request, SENT_TWICE) if error.code is ErrorCode.conflict else say(request, error)
        return await _render(request, staff, portal, grace=grace_minutes, status=error.status,
                             errors={"grace_minutes": words})
    return await _render(request, staff, portal, created=created)


@router.get("/admin/portals/{portal}/secrets/{kid}/revoke", response_class=HTMLResponse)
async def confirm_revoke(request: Request, portal: str = PortalSlug, kid: str = Kid) -> Response:
    staff = await require_staff(request, Permission.administer)
    view = await _portal(request, staff, portal)
    secret = next((s for s in _secrets(view) if s["kid"] == kid and not s["revoked"]), None)
    if secret is None:
        return see_other(f"/admin/portals/{portal}/secrets")
    others = sum(1 for s in _secrets(view) if s["live"] and s["kid"] != kid)
    return staff_page(request, staff, "staff/admin_secrets_confirm.html", section="admin-secrets", slug=portal,
                      portal_name=view.name, secret=secret, others_live=others)


@router.post("/admin/portals/{portal}/secrets/{kid}/revoke")
async def revoke(request: Request, portal: str = PortalSlug, kid: str = Kid) -> Response:
    staff = await require_staff(request, Permission.administer)
    await request.app.state.rpc.call(operations.auth.revoke_secret,
                                     RevokeSecret(actor=staff.actor, portal=portal, kid=kid))
    return see_other(f"/admin/portals/{portal}/secrets?revoked=1")


async def _portal(request: Request, staff: Staff, portal: str) -> PortalView:
    return await request.app.state.rpc.call(operations.auth.get_portal, GetPortal(actor=staff.actor, portal=portal))


def _secrets(view: PortalView) -> list[dict[str, Any]]:
    """The secrets, newest first, their times as datetimes."""
    shown = []
    for secret in reversed(view.secrets):
        retires = secret.get("retires_at")
        shown.append({**secret, "created_at": datetime.fromisoformat(str(secret["created_at"])),
                      "retires_at": datetime.fromisoformat(str(retires)) if retires else None})
    return shown


async def _render(request: Request, staff: Staff, portal: str, *, created: NewSecret | None = None,
                  notice: str = "", grace: str = "60", errors: dict[str, str] | None = None,
                  status: int = 200) -> Response:
    view = await _portal(request, staff, portal)
    errors = errors or {}
    summary = [("f-" + name, words) for name, words in errors.items()]
    retire_at = datetime.fromisoformat(created.previous_retire_at) if created and created.previous_retire_at else None
    return staff_page(request, staff, "staff/admin_secrets.html", section="admin-secrets", status=status,
                      slug=portal, portal_name=view.name, kb_id=view.kb_id, secrets=_secrets(view),
                      kustomer_url=f"{str(request.base_url).rstrip('/')}/v1/auth/kb/{view.kb_id}/settings",
                      created=created, retire_at=retire_at, notice=notice, v={"grace_minutes": grace},
                      errors=errors, summary=summary, part="secrets",
                      newest_kid=next((s["kid"] for s in reversed(view.secrets) if s.get("live")), None))
