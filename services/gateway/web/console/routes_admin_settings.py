"""The admin console's landing page and a portal's settings:

- `GET /admin/`: the organisation's portals with links to their pages (admins: settings, secrets,
  articles, theme, and the organisation's API keys, staff and operations; content managers: articles
  and theme only);
- `GET /admin/portals/{portal}/settings`: sign-in, sessions, conversations, details shown to customers,
  message limits, the chat widget's origins and the knowledge base's switches, each section a form;
- `POST /admin/portals/{portal}/settings/{section}`: saves that section alone, then back to the page
  with "Saved" (303); a refusal shows the page again with the words next to the field, what was typed
  kept, and nothing stored.

The operations are those of the admin JSON API (`routes_admin.py`, `routes_admin_conversations.py`,
`routes_admin_kb.py`); each service checks the role again (`admin_settings_forms.py`).
"""

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.roles import Permission
from contracts.rpc import ListPortals
from services.gateway.web.console import admin_settings_forms as forms
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.portal import forget_portal
from services.gateway.web.rendering import gettext
from services.gateway.web.words import _

router = APIRouter(include_in_schema=False)

PortalSlug = Path(min_length=1, max_length=100)
SectionName = Path(min_length=1, max_length=40)

# Each section's title: the page's headings, the "Saved" notice and the error summary use it.
TITLES = {
    "sign-in": _("Sign-in"),
    "sessions": _("Sessions"),
    "conversations": _("Conversations"),
    "details": _("Details shown to customers"),
    "limits": _("Message and file limits"),
    "widget": _("Chat widget"),
    "knowledge-base": _("Knowledge base"),
}


@router.get("/admin", include_in_schema=False)
async def admin_bare() -> Response:
    return see_other("/admin/")


@router.get("/admin/", response_class=HTMLResponse)
async def admin_home(request: Request) -> Response:
    # Admins have every permission; content managers have `edit_articles`; agents neither (403).
    staff = await require_staff(request, Permission.edit_articles)
    portals = (await request.app.state.rpc.call(operations.auth.list_portals,
                                                ListPortals(actor=staff.actor))).portals
    return staff_page(request, staff, "staff/admin_home.html", section="admin", portals=portals)


@router.get("/admin/portals/{portal}/settings", response_class=HTMLResponse)
async def settings_page(request: Request, portal: str = PortalSlug) -> Response:
    staff = await require_staff(request, Permission.administer)
    form = await forms.stored(request, staff, portal)
    saved = request.query_params.get("saved", "")
    return _render(request, staff, portal, form, saved=saved if saved in TITLES else "")


@router.post("/admin/portals/{portal}/settings/{section}", response_class=HTMLResponse)
async def save_section(request: Request, portal: str = PortalSlug, section: str = SectionName) -> Response:
    staff = await require_staff(request, Permission.administer)
    if section not in TITLES:
        raise ServiceError(ErrorCode.not_found, "No such settings section.")
    typed = {name: value for name, value in (await request.form()).multi_items() if isinstance(value, str)}
    try:
        await forms.save(request, staff, portal, section, typed)
    except forms.Refused as refused:
        form = await forms.stored(request, staff, portal)
        forms.typed_into(form, section, typed)
        form.errors = refused.errors
        return _render(request, staff, portal, form, refused=section, status=refused.status)
    forget_portal(request.app, portal)  # this gateway's portal pages follow the change at once
    return see_other(f"/admin/portals/{portal}/settings?saved={section}#{section}")


def _render(request: Request, staff: Staff, portal: str, form: forms.Form, *, saved: str = "", refused: str = "",
            status: int = 200) -> Response:
    summary = [(_anchor(name, refused), words) for name, words in form.errors.items()]
    return staff_page(request, staff, "staff/admin_settings.html", section="admin-settings", status=status,
                      slug=portal, form=form, v=form.values, errors=form.errors, saved=saved, refused=refused,
                      titles={name: gettext(request, title) for name, title in TITLES.items()},
                      summary=summary, part="settings", limits=forms.limit_bounds())


def _anchor(name: str, section: str) -> str:
    """The id the error summary links to: the field's input, or the section's own error."""
    return f"{section}-error" if name == section else f"f-{name}"
