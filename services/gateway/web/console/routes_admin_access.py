"""Who may use Portico, in the admin console (admins only):

- `GET|POST /admin/api-keys`: the organisation's API keys (never the keys) and a new one, shown in the
  answer's page only, this once; `GET|POST /admin/api-keys/{key_id}/revoke`: a confirmation, then revoked;
- `GET|POST /admin/staff`: the staff accounts and a new one (a generated password is shown once);
  `POST /admin/staff/{user_id}/role`, `…/disable`, `…/enable`: a new role, or the account disabled or
  enabled (either ends the member's open sessions).

The operations are those of `routes_admin.py` (`/api/v1/admin/api-keys`, `/api/v1/admin/staff`); auth
checks the role again and keeps the organisation's last enabled admin.
"""

from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.roles import Permission
from contracts.rpc import CreateApiKey, CreateStaff, ListApiKeys, ListStaff, RevokeApiKey, UpdateStaff
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.rendering import gettext
from services.gateway.web.words import _, say

router = APIRouter(include_in_schema=False)

KeyId = Path(min_length=1, max_length=26)
UserId = Path(min_length=1, max_length=26)

KEY_ROLES = {"org.admin": _("Everything an admin may do"), "org.agent": _("Conversations, as an agent"),
             "org.read": _("Read the public knowledge base")}
STAFF_ROLES = {"agent": _("Agent"), "content_manager": _("Content manager"), "admin": _("Admin")}
WORDS = {
    "name": _("Give the key a name of at most 100 characters."),
    "role": _("Choose one of the roles offered."),
    "expires_on": _("Enter a date in the future, like 2030-12-31, or leave it empty."),
    "email": _("Enter an e-mail address, like name@example.com."),
    "display_name": _("Use at most 200 characters."),
    "password": _("A password has at least 12 characters. Leave it empty to have one made."),
    "taken": _("This e-mail address has an account in this organisation already."),
    "last_admin": _("The organisation needs an enabled admin: make someone else an admin first."),
}
DONE = {"created": _("The staff account was made."), "role": _("The role was changed; their open sessions ended."),
        "disabled": _("The account was disabled; its open sessions ended."),
        "enabled": _("The account was enabled again."), "revoked": _("The API key was revoked.")}


# -- API keys ------------------------------------------------------------------------------------

@router.get("/admin/api-keys", response_class=HTMLResponse)
async def keys_page(request: Request) -> Response:
    staff = await require_staff(request, Permission.administer)
    return await _keys(request, staff)


@router.post("/admin/api-keys", response_class=HTMLResponse)
async def create_key(request: Request, name: str = Form(default="", max_length=1000),
                     role: str = Form(default="", max_length=40),
                     expires_on: str = Form(default="", max_length=40)) -> Response:
    staff = await require_staff(request, Permission.administer)
    typed = {"name": name, "role": role, "expires_on": expires_on}
    try:
        expires_at = datetime.combine(date.fromisoformat(expires_on.strip()), time(), UTC) if expires_on.strip() \
            else None
    except ValueError:
        return await _keys(request, staff, typed=typed, errors=_words(request, ["expires_on"]), status=422)
    try:
        ask = CreateApiKey(actor=staff.actor, name=name.strip(), role=role, expires_at=expires_at)  # type: ignore[arg-type]
    except ValidationError as invalid:
        return await _keys(request, staff, typed=typed, errors=_words(request, _fields(invalid)), status=422)
    try:
        created = await request.app.state.rpc.call(operations.auth.create_api_key, ask)
    except ServiceError as error:
        # Beyond what the contract checks, auth refuses only an expiry that is not in the future.
        fields = ["expires_on"] if error.code is ErrorCode.invalid_request else []
        errors = _words(request, fields) if fields else {"form": say(request, error)}
        return await _keys(request, staff, typed=typed, errors=errors, status=error.status)
    return await _keys(request, staff, created=created, status=201)


@router.get("/admin/api-keys/{key_id}/revoke", response_class=HTMLResponse)
async def confirm_revoke_key(request: Request, key_id: str = KeyId) -> Response:
    staff = await require_staff(request, Permission.administer)
    keys = (await request.app.state.rpc.call(operations.auth.list_api_keys, ListApiKeys(actor=staff.actor))).keys
    key = next((k for k in keys if k.id == key_id and not k.revoked), None)
    if key is None:
        return see_other("/admin/api-keys")
    return staff_page(request, staff, "staff/admin_keys_confirm.html", section="admin-keys", key=key)


@router.post("/admin/api-keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str = KeyId) -> Response:
    staff = await require_staff(request, Permission.administer)
    await request.app.state.rpc.call(operations.auth.revoke_api_key, RevokeApiKey(actor=staff.actor, key_id=key_id))
    return see_other("/admin/api-keys?done=revoked")


async def _keys(request: Request, staff: Staff, *, created: Any = None, typed: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> Response:
    keys = (await request.app.state.rpc.call(operations.auth.list_api_keys, ListApiKeys(actor=staff.actor))).keys
    return staff_page(request, staff, "staff/admin_keys.html", section="admin-keys", status=status,
                      keys=list(reversed(keys)), created=created, roles=KEY_ROLES, now=datetime.now(UTC),
                      **_form(request, typed or {"role": "org.agent"}, errors or {}))


# -- staff ---------------------------------------------------------------------------------------

@router.get("/admin/staff", response_class=HTMLResponse)
async def staff_list(request: Request) -> Response:
    staff = await require_staff(request, Permission.administer)
    return await _staff(request, staff)


@router.post("/admin/staff", response_class=HTMLResponse)
async def create_staff(request: Request, email: str = Form(default="", max_length=1000),
                       display_name: str = Form(default="", max_length=1000),
                       role: str = Form(default="", max_length=40),
                       password: str = Form(default="", max_length=1024)) -> Response:
    staff = await require_staff(request, Permission.administer)
    typed = {"email": email, "display_name": display_name, "role": role}  # never the password: it is not shown again
    try:
        ask = CreateStaff(actor=staff.actor, email=email.strip(), display_name=display_name.strip() or None,
                          role=role, password=password or None)  # type: ignore[arg-type]
    except ValidationError as invalid:
        return await _staff(request, staff, typed=typed, errors=_words(request, _fields(invalid)), status=422)
    try:
        created = await request.app.state.rpc.call(operations.auth.create_staff, ask)
    except ServiceError as error:
        errors = {"email": gettext(request, WORDS["taken"])} if error.code is ErrorCode.conflict else \
            _words(request, ["email"]) if error.code is ErrorCode.invalid_email else {"form": say(request, error)}
        return await _staff(request, staff, typed=typed, errors=errors, status=error.status)
    if created.password is None:
        return see_other("/admin/staff?done=created")
    return await _staff(request, staff, created=created, status=201)


@router.post("/admin/staff/{user_id}/role", response_class=HTMLResponse)
async def change_role(request: Request, user_id: str = UserId, role: str = Form(default="", max_length=40)) -> Response:
    staff = await require_staff(request, Permission.administer)
    if role not in STAFF_ROLES:
        return await _staff(request, staff, row=(user_id, gettext(request, WORDS["role"])), status=422)
    return await _change(request, staff, UpdateStaff(actor=staff.actor, user_id=user_id, role=role), "role")  # type: ignore[arg-type]


@router.post("/admin/staff/{user_id}/disable", response_class=HTMLResponse)
async def disable(request: Request, user_id: str = UserId) -> Response:
    staff = await require_staff(request, Permission.administer)
    return await _change(request, staff, UpdateStaff(actor=staff.actor, user_id=user_id, disabled=True), "disabled")


@router.post("/admin/staff/{user_id}/enable", response_class=HTMLResponse)
async def enable(request: Request, user_id: str = UserId) -> Response:
    staff = await require_staff(request, Permission.administer)
    return await _change(request, staff, UpdateStaff(actor=staff.actor, user_id=user_id, disabled=False), "enabled")


async def _change(request: Request, staff: Staff, change: UpdateStaff, done: str) -> Response:
    try:
        await request.app.state.rpc.call(operations.auth.update_staff, change)
    except ServiceError as error:
        if error.code is not ErrorCode.conflict:
            raise
        return await _staff(request, staff, row=(change.user_id, gettext(request, WORDS["last_admin"])),
                            status=error.status)
    return see_other(f"/admin/staff?done={done}#staff-{change.user_id}")


async def _staff(request: Request, staff: Staff, *, created: Any = None, typed: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None, row: tuple[str, str] | None = None,
                 status: int = 200) -> Response:
    members = (await request.app.state.rpc.call(operations.auth.list_staff, ListStaff(actor=staff.actor))).staff
    context = _form(request, typed or {"role": "agent"}, errors or {})
    if row is not None:
        context["summary"].append((f"staff-{row[0]}-error", row[1]))
    return staff_page(request, staff, "staff/admin_staff.html", section="admin-staff", status=status,
                      members=members, created=created, roles=STAFF_ROLES, row=row, me=staff.user_id, **context)


# -- shared --------------------------------------------------------------------------------------

def _form(request: Request, typed: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    done = request.query_params.get("done", "")
    summary = [("form-error" if name == "form" else f"f-{name}", words) for name, words in errors.items()]
    return {"v": typed, "errors": errors, "summary": summary,
            "notice": gettext(request, DONE[done]) if done in DONE and request.method == "GET" else ""}


def _fields(invalid: ValidationError) -> list[str]:
    """The form fields a contract refused (`expires_at` is the form's `expires_on`)."""
    names = [str(error["loc"][0]) if error["loc"] else "form" for error in invalid.errors()]
    return ["expires_on" if name == "expires_at" else name for name in names]


def _words(request: Request, fields: list[str]) -> dict[str, str]:
    return {name: gettext(request, WORDS[name]) if name in WORDS else gettext(request, WORDS["role"])
            for name in fields}
