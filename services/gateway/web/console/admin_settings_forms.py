"""The portal settings page's sections: what each shows, how what was typed becomes the request of the
operation that stores it, and refusals as words next to the field they are about.

A section is saved by one operation (auth's portal settings, conversations' settings, the kb switches),
so a refusal stores nothing of it. The rules are the contracts' and the services': the page only turns
text into numbers and lists, builds the contract's request (its validation is the contract's own) and
places the service's answer. A service names the field it refuses in its message (`field: words`).
"""

import asyncio
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from contracts import operations
from contracts.conversations import (ConversationSettings, DetailAttribute, GetConversationSettings,
                                     UpdateConversationSettings)
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import GetKbSwitches, KbSwitches, UpdateKbSwitches
from contracts.rpc import GetPortal, PortalSettings, UpdatePortalSettings
from services.gateway.web.console.staff import Staff
from services.gateway.web.rendering import gettext
from services.gateway.web.words import _, say

MB = 1024 * 1024
WHOLE = re.compile(r"-?[0-9]{1,12}")
DETAIL_ROWS_FREE = 3    # empty rows offered below the portal's detail attributes
MAX_DETAIL_ROWS = 20    # ConversationSettings.detail_attributes holds at most 20

CHECKBOXES = {
    "sign-in": ("email_access_enabled", "sso_enabled", "anonymous_enabled", "custom_sign_on_enabled"),
    "conversations": ("my_conversations_enabled", "reopen_enabled"),
    "knowledge-base": ("portal_for_agents", "internal_kb", "show_only_internal"),
}
TEXTS = {
    "sign-in": ("custom_sign_on_redirect_uri", "sso_token_max_age_minutes"),
    "sessions": ("session_lifetime_hours", "idle_timeout_minutes"),
    "conversations": ("reopen_policy", "reopen_within_days"),
    "limits": ("max_body_chars", "max_files", "max_file_mb"),
    "widget": ("widget_origins",),
}
SECTIONS = ("sign-in", "sessions", "conversations", "details", "limits", "widget", "knowledge-base")
# A contract's field name -> the form field that holds it, where they differ.
FORM_NAMES = {"max_file_bytes": "max_file_mb", "detail_attributes": "details"}

WHOLE_NUMBER = _("Enter a whole number, like %(example)s.")
NUMBER_RANGE = _("Enter a whole number from %(min)s to %(max)s.")
SIZE_RANGE = _("Enter a size in MB, more than 0 and at most %(max)s.")
FILL_IN = _("Fill this in.")
TOO_LONG = _("Use at most %(max)s characters.")
ATTRIBUTE = _("Use assignee, updated_at, closed_at, reference, or custom. and a name of letters, digits and _ "
              "(like custom.order_number).")
TOO_MANY_ROWS = _("At most %(max)s attributes.")


@dataclass
class Refused(Exception):
    """What a section's save was refused for: words by form field (a section's name for the section as
    a whole), and the status of the answer."""

    errors: dict[str, str]
    status: int = 422


@dataclass
class Form:
    """What the page shows: every field's value (stored, or as typed in the section that was refused),
    the detail attribute rows, and errors by form field."""

    values: dict[str, Any]
    rows: list[tuple[str, str]]
    errors: dict[str, str] = field(default_factory=dict)
    kb_id: str = ""


async def stored(request: Request, staff: Staff, portal: str) -> Form:
    """The portal's settings as the three services hold them."""
    rpc = request.app.state.rpc
    view, conversations, switches = await asyncio.gather(
        rpc.call(operations.auth.get_portal, GetPortal(actor=staff.actor, portal=portal)),
        rpc.call(operations.conversations.get_settings, GetConversationSettings(actor=staff.actor, portal=portal)),
        rpc.call(operations.kb.get_switches, GetKbSwitches(actor=staff.actor, portal=portal)))
    values: dict[str, Any] = {**view.settings, **conversations.model_dump(), **switches.model_dump()}
    values["custom_sign_on_redirect_uri"] = values.get("custom_sign_on_redirect_uri") or ""
    values["widget_origins"] = "\n".join(values.get("widget_origins") or [])
    values["max_file_mb"] = _megabytes(conversations.max_file_bytes)
    values["name"] = view.name
    rows = [(a.attribute, a.display_name) for a in conversations.detail_attributes]
    return Form(values=values, rows=_with_free_rows(rows), kb_id=view.kb_id)


def typed_into(form: Form, section: str, typed: dict[str, str]) -> None:
    """Show `section` as it was typed (the rest stays as stored)."""
    for name in CHECKBOXES.get(section, ()):
        form.values[name] = name in typed
    for name in TEXTS.get(section, ()):
        form.values[name] = typed.get(name, "")
    if section == "details":
        form.rows = _with_free_rows(_typed_rows(typed), keep_empty=True)


async def save(request: Request, staff: Staff, portal: str, section: str, typed: dict[str, str]) -> None:
    """Store `section` as typed, through the operation the admin JSON API calls; raises `Refused`."""
    rpc, actor = request.app.state.rpc, staff.actor
    checked = {name: name in typed for name in CHECKBOXES.get(section, ())}
    try:
        if section in ("sign-in", "sessions", "widget"):
            settings = _contract(request, PortalSettings, _auth_values(section, typed, checked))
            await rpc.call(operations.auth.update_portal_settings,
                           UpdatePortalSettings(actor=actor, portal=portal, settings=settings))
        elif section in ("conversations", "details", "limits"):
            rows = [row for row, (a, n) in enumerate(_typed_rows(typed)) if a or n]
            settings = _contract(request, ConversationSettings, _conversation_values(section, typed, checked), rows)
            await rpc.call(operations.conversations.update_settings,
                           UpdateConversationSettings(actor=actor, portal=portal, settings=settings))
        else:
            switches = _contract(request, KbSwitches, checked)
            await rpc.call(operations.kb.update_switches, UpdateKbSwitches(actor=actor, portal=portal,
                                                                           switches=switches))
    except ServiceError as error:
        raise Refused({_field_of(error, section): _service_words(request, error)}, error.status) from error


def _auth_values(section: str, typed: dict[str, str], checked: dict[str, bool]) -> dict[str, Any]:
    if section == "widget":
        return {"widget_origins": [line.strip() for line in typed.get("widget_origins", "").splitlines()
                                   if line.strip()]}
    values: dict[str, Any] = dict(checked)
    if section == "sign-in":
        # An empty Redirect URI leaves the stored one (custom sign-on is offered only with one).
        values["custom_sign_on_redirect_uri"] = typed.get("custom_sign_on_redirect_uri", "").strip() or None
    for name in TEXTS[section]:
        if name != "custom_sign_on_redirect_uri":
            values[name] = typed.get(name, "")
    return values


def _conversation_values(section: str, typed: dict[str, str], checked: dict[str, bool]) -> dict[str, Any]:
    if section == "details":
        return {"detail_attributes": [{"attribute": a, "display_name": n} for a, n in _typed_rows(typed)
                                      if a or n]}
    values: dict[str, Any] = dict(checked)
    if section == "conversations":
        values["reopen_policy"] = typed.get("reopen_policy") or None
        days = typed.get("reopen_within_days", "").strip()
        if days or values["reopen_policy"] == "within_days":
            values["reopen_within_days"] = days
        return values
    values["max_body_chars"] = typed.get("max_body_chars", "")
    values["max_files"] = typed.get("max_files", "")
    values["max_file_bytes"] = _bytes(typed.get("max_file_mb", ""))
    return values


def _contract(request: Request, model: type[BaseModel], values: dict[str, Any], rows: list[int] | None = None) -> Any:
    """`model` built from the values; whole numbers are read here, the rest is the contract's own check.
    `rows`: the form row of each detail attribute sent (empty rows are not)."""
    errors: dict[str, str] = {}
    for name, value in list(values.items()):
        if isinstance(value, _NotANumber):
            errors[FORM_NAMES.get(name, name)] = gettext(request, SIZE_RANGE, max=_top(model, name) // MB)
            del values[name]
        elif isinstance(value, str) and name in model.model_fields and _wants_int(model, name):
            text = value.strip()
            if not text:
                del values[name]  # left empty: stays as it is
            elif WHOLE.fullmatch(text):
                values[name] = int(text)
            else:
                errors[FORM_NAMES.get(name, name)] = gettext(request, WHOLE_NUMBER, example=_example(model, name))
    try:
        built = model(**values)
    except ValidationError as invalid:  # every field's words at once, with those of the numbers above
        raise Refused({**_validation_words(request, model, invalid, rows or []), **errors}) from invalid
    if errors:
        raise Refused(errors)
    return built


def _validation_words(request: Request, model: type[BaseModel], invalid: ValidationError,
                      rows: list[int]) -> dict[str, str]:
    words: dict[str, str] = {}
    for error in invalid.errors():
        loc, kind = error["loc"], error["type"]
        name = str(loc[0])
        if name == "detail_attributes" and len(loc) >= 3 and isinstance(loc[1], int) and loc[1] < len(rows):
            target, owner, part = f"{loc[2]}-{rows[loc[1]]}", DetailAttribute, str(loc[2])
        else:
            target, owner, part = FORM_NAMES.get(name, name), model, name
        if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            low, high = _bounds(owner, part)
            text = gettext(request, SIZE_RANGE, max=(high or 0) // MB) if part == "max_file_bytes" else \
                gettext(request, NUMBER_RANGE, min=low, max=high)
        elif kind == "string_too_short":
            text = gettext(request, FILL_IN)
        elif kind == "string_too_long":
            text = gettext(request, TOO_LONG, max=error.get("ctx", {}).get("max_length"))
        elif kind == "string_pattern_mismatch" and part == "attribute":
            text = gettext(request, ATTRIBUTE)
        elif kind == "too_long" and name == "detail_attributes":
            text = gettext(request, TOO_MANY_ROWS, max=MAX_DETAIL_ROWS)
        else:
            text = error["msg"]
        words.setdefault(target, text)
    return words


def _field_of(error: ServiceError, section: str) -> str:
    """The form field a service's refusal names (`field: words`), else the section."""
    name, colon, _rest = error.message.partition(": ")
    if colon and error.code is ErrorCode.invalid_setting:
        name = FORM_NAMES.get(name, name)
        if name in TEXTS.get(section, ()) or name in CHECKBOXES.get(section, ()):
            return name
    return section


def _service_words(request: Request, error: ServiceError) -> str:
    if error.code is ErrorCode.invalid_setting:
        name, colon, rest = error.message.partition(": ")
        return rest if colon and " " not in name else error.message
    return say(request, error)


class _NotANumber(str):
    """A size that could not be read as megabytes."""


def _bytes(text: str) -> Any:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return int(Decimal(text) * MB)
    except (InvalidOperation, ValueError):
        return _NotANumber(text)


def _megabytes(size: int) -> str:
    return f"{Decimal(size) / MB:.2f}".rstrip("0").rstrip(".")


def _typed_rows(typed: dict[str, str]) -> list[tuple[str, str]]:
    rows = []
    for row in range(MAX_DETAIL_ROWS + DETAIL_ROWS_FREE):
        if f"attribute-{row}" not in typed and f"display_name-{row}" not in typed:
            break
        rows.append((typed.get(f"attribute-{row}", "").strip(), typed.get(f"display_name-{row}", "").strip()))
    return rows


def _with_free_rows(rows: list[tuple[str, str]], keep_empty: bool = False) -> list[tuple[str, str]]:
    if not keep_empty:
        rows = [r for r in rows if r[0] or r[1]]
    free = max(0, min(DETAIL_ROWS_FREE, MAX_DETAIL_ROWS - len(rows)))
    return rows + [("", "")] * (0 if keep_empty else free)


def limit_bounds() -> dict[str, Any]:
    """The message limits' ranges, from the contract, for the page's hints."""
    return {"max_body_chars": _bounds(ConversationSettings, "max_body_chars"),
            "max_files": _bounds(ConversationSettings, "max_files"),
            "max_file_mb": _top(ConversationSettings, "max_file_bytes") // MB}


def _wants_int(model: type[BaseModel], name: str) -> bool:
    return "int" in str(model.model_fields[name].annotation)


def _bounds(model: type[BaseModel], name: str) -> tuple[int | None, int | None]:
    low = high = None
    for rule in model.model_fields[name].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high


def _top(model: type[BaseModel], name: str) -> int:
    return _bounds(model, name)[1] or 0


def _example(model: type[BaseModel], name: str) -> int:
    low, high = _bounds(model, name)
    return max(low or 1, min(high or 30, 30))


__all__ = ["Form", "Refused", "SECTIONS", "limit_bounds", "save", "stored", "typed_into"]
