"""A portal's theme in the admin console (admins and content managers), one view at a time (home,
My Conversations, conversation detail, article):

- `GET /admin/portals/{portal}/theme?view=home`: the draft (or, while there is none, the published theme) to
  edit: colours (a colour picker and a text field each), logo URL, custom CSS, header and footer Markdown;
  links to see the draft on the portal's real pages (`?preview=draft`, shown to editors only);
- `POST` to it: save the draft (`kb.save_theme_draft`; the kb service refuses colours that are not
  `#rrggbb` or that fail WCAG AA contrast, CSS outside its safe subset, ...: the words show next to the field);
- `POST …/theme/publish`, `POST …/theme/upgrade` (a theme made for older page templates).

Each calls the operation the admin JSON API calls (`services/gateway/routes_admin_kb.py`).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import SaveThemeDraft, ThemeAction, ThemeInput, ThemeReply, ViewTheme
from contracts.operations import Operation
from contracts.roles import Permission
from contracts.rpc import PortalName
from services.gateway.web.console.routes_admin_articles import admin_site, chosen_portal
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.portal import forget_portal
from services.gateway.web.rendering import gettext
from services.gateway.web.words import _, say

router = APIRouter(include_in_schema=False)

PortalSlug = Path(min_length=1, max_length=100)
VIEWS = {"home": _("Home page"), "my_conversations": _("My Conversations"),
         "conversation_detail": _("Conversation detail"), "article": _("Knowledge base and articles")}
# What each colour the portal reads is for (the names and defaults come from the kb service).
COLOUR_WORDS = {"primary": _("Links and buttons"), "on_primary": _("Words on buttons"), "text": _("Text"),
                "background": _("Background"), "muted": _("Secondary text"), "surface": _("Panels"),
                "danger": _("Error messages")}
# Where the message of a refusal points (the kb service names the field first: "logo_url: ...").
FIELD_OF = (("custom_css", "css"), ("logo_url", "logo"), ("header", "header"), ("footer", "footer"),
            ("name", "name"))
DONE_WORDS = {"saved": _("The draft is saved. Customers still see the published theme."),
              "published": _("The draft is published: customers see it now."),
              "upgraded": _("The theme is upgraded to the current page templates.")}


@dataclass
class ThemeForm:
    """One view's fields as shown: colours by name (as typed), the rest as text; errors by field."""

    name: str
    colours: dict[str, str]
    logo_url: str = ""
    css: str = ""
    header: str = ""
    footer: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)  # the colours a refusal names


def named_colours(words: str, names: Iterable[str]) -> set[str]:
    """The colours a refusal names ("text #777777 on background #ffffff ...", "colours.primary: ...")."""
    return {n for n in names if re.search(rf"(?:^|[\s.]){re.escape(n)}(?: #|:)", words)}


def editing(reply: ThemeReply) -> ThemeInput:
    """What the editor starts from: the draft, else the published theme."""
    return reply.draft_source or reply.published_source or ThemeInput(name="Portico", views={})


def form_of(reply: ThemeReply, view: str) -> ThemeForm:
    source = editing(reply)
    shown = source.views.get(view) or ViewTheme()  # type: ignore[call-overload]
    return ThemeForm(name=source.name, colours=dict(shown.colours), logo_url=shown.logo_url or "",
                     css=shown.custom_css, header=shown.header, footer=shown.footer)


def chosen_colour(form: dict[str, str], name: str) -> str:
    """The text field when it was changed, else the picker when it was moved, else what was shown; empty: the
    default colour. (With JavaScript both show the same colour.)"""
    text, was = form.get(f"colour-{name}", "").strip(), form.get(f"was-{name}", "")
    picker, picker_was = form.get(f"picker-{name}", ""), form.get(f"picker-was-{name}", "")
    if text != was:
        return text
    if picker and picker != picker_was:
        return picker
    return was


def refusal(request: Request, error: ServiceError | ValidationError) -> dict[str, str]:
    """{field: words}: `colours`, `logo`, `css`, `header`, `footer`, `name` or `form`."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = {"logo_url": "logo", "custom_css": "css"}.get(str(first["loc"][-1]), str(first["loc"][-1]))
        where = where if where in ("logo", "css", "header", "footer", "name") else "form"
        return {where: f"{first['msg']}."}
    if error.code is not ErrorCode.invalid_setting:
        return {"form": say(request, error)}
    detail = error.message.split(": ", 1)[1] if error.message.startswith("views.") else error.message
    head = error.message.split(":", 1)[0]
    if "colours" in head:
        return {"colours": gettext(request, "These colours cannot be saved: %(detail)s", detail=detail)}
    for prefix, name in FIELD_OF:
        if detail.startswith(prefix):
            return {name: detail}
    return {"form": detail}


async def theme_page(request: Request, staff: Staff, site: PortalName, portals: list[PortalName], reply: ThemeReply,
                     view: str, form: ThemeForm | None = None, *, status: int = 200, notice: str = "",
                     error: str = "") -> HTMLResponse:
    upgrade = sorted({*(reply.draft.upgrade_needed if reply.draft else []),
                      *(reply.published.upgrade_needed if reply.published else [])})
    return staff_page(request, staff, "staff/admin_theme.html", section="admin-theme", status=status, site=site,
                      portals=portals, part="theme", reply=reply, view=view, views=VIEWS,
                      form=form or form_of(reply, view), defaults=reply.colour_defaults, colour_words=COLOUR_WORDS,
                      upgrade=upgrade, notice=notice, error=error,
                      upgrade_names=", ".join(gettext(request, VIEWS[v]) for v in upgrade if v in VIEWS))


async def current(request: Request, staff: Staff, slug: str) -> ThemeReply:
    return await request.app.state.rpc.call(operations.kb.get_theme, ThemeAction(actor=staff.actor, portal=slug))


def view_of(view: str) -> str:
    return view if view in VIEWS else "home"


@router.get("/admin/theme", include_in_schema=False)
async def theme_home(request: Request) -> Response:
    staff = await require_staff(request, Permission.edit_articles)
    return see_other(f"/admin/portals/{await chosen_portal(request, staff)}/theme")


@router.get("/admin/portals/{portal}/theme", response_class=HTMLResponse)
async def theme(request: Request, portal: str = PortalSlug, view: str = Query(default="home", max_length=40),
                done: str = Query(default="", max_length=20)) -> HTMLResponse:
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    words = DONE_WORDS.get(done)
    return await theme_page(request, staff, site, portals, await current(request, staff, site.slug), view_of(view),
                            notice=gettext(request, words) if words else "")


@router.post("/admin/portals/{portal}/theme", response_class=Response)
async def save_draft(request: Request, portal: str = PortalSlug,
                     view: str = Query(default="home", max_length=40)) -> Response:
    """This view's fields into the draft (every view's, with "use for every view"); the other views are kept."""
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    view = view_of(view)
    reply = await current(request, staff, site.slug)
    typed = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    source = editing(reply)
    before = source.views.get(view) or ViewTheme()  # type: ignore[call-overload]
    colours = dict(before.colours)
    for name in reply.colour_defaults:
        chosen = chosen_colour(typed, name)
        if chosen:
            colours[name] = chosen.lower()
        else:
            colours.pop(name, None)
    form = ThemeForm(name=typed.get("name", "").strip(), colours=colours, logo_url=typed.get("logo_url", "").strip(),
                     css=typed.get("custom_css", ""), header=typed.get("header", ""), footer=typed.get("footer", ""))
    try:
        edited = ViewTheme(base_template=before.base_template, colours=colours, logo_url=form.logo_url or None,
                           custom_css=form.css, header=form.header, footer=form.footer)
        views = dict(source.views)
        for name in (VIEWS if typed.get("all_views") else (view,)):
            views[name] = edited  # type: ignore[index]
        theme_input = ThemeInput(name=form.name, version=source.version, views=views)
        await request.app.state.rpc.call(operations.kb.save_theme_draft,
                                         SaveThemeDraft(actor=staff.actor, portal=site.slug, theme=theme_input))
    except (ServiceError, ValidationError) as error:
        form.errors = refusal(request, error)
        form.invalid = named_colours(form.errors.get("colours", ""), reply.colour_defaults)
        return await theme_page(request, staff, site, portals, reply, view, form,
                                status=getattr(error, "status", 422))
    return see_other(f"/admin/portals/{site.slug}/theme?view={view}&done=saved")


@router.post("/admin/portals/{portal}/theme/publish", response_class=Response)
async def publish(request: Request, portal: str = PortalSlug,
                  view: str = Query(default="home", max_length=40)) -> Response:
    return await theme_action(request, portal, view_of(view), operations.kb.publish_theme, "published")


@router.post("/admin/portals/{portal}/theme/upgrade", response_class=Response)
async def upgrade(request: Request, portal: str = PortalSlug,
                  view: str = Query(default="home", max_length=40)) -> Response:
    return await theme_action(request, portal, view_of(view), operations.kb.upgrade_theme, "upgraded")


NOTHING_TO = {"published": _("There is no draft to publish. Save one first."),
              "upgraded": _("The portal uses the default theme, which is current.")}


async def theme_action(request: Request, portal: str, view: str, operation: Operation[ThemeAction, ThemeReply],
                       done: str) -> Response:
    """Publish or upgrade; a refusal (no draft, a draft that fails the contrast rule) shows on the page."""
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    try:
        await request.app.state.rpc.call(operation, ThemeAction(actor=staff.actor, portal=site.slug))
    except ServiceError as error:
        if error.code not in (ErrorCode.not_found, ErrorCode.invalid_setting):
            raise
        words = error.message if error.code is ErrorCode.invalid_setting else gettext(request, NOTHING_TO[done])
        return await theme_page(request, staff, site, portals, await current(request, staff, site.slug), view,
                                status=error.status, error=words)
    forget_portal(request.app, site.slug)  # this gateway's pages show the change at once
    return see_other(f"/admin/portals/{site.slug}/theme?view={view}&done={done}")
