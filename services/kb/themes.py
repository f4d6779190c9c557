"""Portal themes: edit a draft, preview it, publish it; flag and upgrade themes made for older templates."""

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from contracts.errors import ErrorCode, ServiceError
from contracts.kb import (
    GetPortalAppearance,
    PortalAppearance,
    RenderedView,
    SaveThemeDraft,
    ThemeAction,
    ThemeInput,
    ThemeReply,
    ThemeState,
    ViewTheme,
)
from services.kb import domain
from services.kb.models import Theme
from services.kb.portals import admin_portal, portal
from services.runtime.service import Service

DEFAULT_THEME: dict[str, Any] = {"name": "Portico", "version": domain.THEME_VERSION, "views": {
    view: ViewTheme(colours={k: domain.PORTAL_COLOURS[k] for k in ("primary", "text", "background")}).model_dump()
    for view in domain.VIEWS_NEEDING}}


def render(theme: dict[str, Any] | None) -> ThemeState | None:
    if theme is None:
        return None
    views = {}
    for name, raw in theme["views"].items():
        view = ViewTheme.model_validate(raw)
        views[name] = RenderedView(base_template=view.base_template, colours=view.colours, logo_url=view.logo_url,
                                   css=domain.sanitise_css(view.custom_css),
                                   header_html=domain.render_markdown(view.header),
                                   footer_html=domain.render_markdown(view.footer))
    needing = [v for v, required in domain.VIEWS_NEEDING.items() if theme["version"] < required]
    return ThemeState(name=theme["name"], version=theme["version"], views=views, upgrade_needed=needing)


def source(theme: dict[str, Any] | None) -> ThemeInput | None:
    """A stored theme as it was saved, for the editor; None for one saved in a shape no longer accepted."""
    if theme is None:
        return None
    try:
        return ThemeInput.model_validate(theme)
    except ValidationError:
        return None


def _reply(slug: str, row: Theme | None) -> ThemeReply:
    published = row.published if row and row.published else DEFAULT_THEME
    draft = row.draft if row else None
    return ThemeReply(portal=slug, draft=render(draft), published=render(published),
                      required_version=domain.THEME_VERSION, draft_source=source(draft),
                      published_source=source(published), colour_defaults=dict(domain.PORTAL_COLOURS))


async def get(service: Service, request: ThemeAction) -> ThemeReply:
    found = await admin_portal(service, request.actor, request.portal)
    return _reply(found.slug, await service.read(lambda s: s.get(Theme, found.slug)))


async def save_draft(service: Service, request: SaveThemeDraft) -> ThemeReply:
    found = await admin_portal(service, request.actor, request.portal)
    for name, view in request.theme.views.items():  # refuse what would not render, before storing it
        domain.check_colours(view.colours)
        domain.check_contrast(view.colours, f"views.{name}.colours")
        domain.check_logo(view.logo_url)
        domain.sanitise_css(view.custom_css)
        domain.render_markdown(view.header, "header", ErrorCode.invalid_setting)
        domain.render_markdown(view.footer, "footer", ErrorCode.invalid_setting)

    def write(session: Session) -> ThemeReply:
        row = session.get(Theme, found.slug) or Theme(portal=found.slug, updated_at=datetime.now(UTC))
        row.draft = request.theme.model_dump(mode="json")
        row.updated_at = datetime.now(UTC)
        session.add(row)
        return _reply(found.slug, row)

    return await service.transaction(write)


async def preview(service: Service, request: ThemeAction) -> ThemeState:
    reply = await get(service, request)
    if reply.draft is None:
        raise ServiceError(ErrorCode.not_found, "There is no draft theme; save one first.")
    return reply.draft


async def publish(service: Service, request: ThemeAction) -> ThemeReply:
    found = await admin_portal(service, request.actor, request.portal)

    def write(session: Session) -> ThemeReply:
        row = session.get(Theme, found.slug)
        if row is None or row.draft is None:
            raise ServiceError(ErrorCode.not_found, "There is no draft theme to publish.")
        for name, view in row.draft["views"].items():  # a draft saved before the contrast rule
            domain.check_contrast(ViewTheme.model_validate(view).colours, f"views.{name}.colours")
        row.published = dict(row.draft)
        row.updated_at = datetime.now(UTC)
        session.add(row)
        return _reply(found.slug, row)

    return await service.transaction(write)


def upgraded(theme: dict[str, Any]) -> dict[str, Any]:
    """The theme for the current templates, its customisations kept; views it lacks take the home view's."""
    views = dict(theme["views"])
    model = views.get("home") or next(iter(views.values()), ViewTheme().model_dump())
    for view in domain.VIEWS_NEEDING:
        views.setdefault(view, dict(model))
    return {**theme, "version": domain.THEME_VERSION, "views": views}


async def upgrade(service: Service, request: ThemeAction) -> ThemeReply:
    """One step: the draft and the published theme both move to the current version."""
    found = await admin_portal(service, request.actor, request.portal)

    def write(session: Session) -> ThemeReply:
        row = session.get(Theme, found.slug)
        if row is None:
            raise ServiceError(ErrorCode.not_found, "The portal uses the default theme, which is current.")
        row.draft = upgraded(row.draft) if row.draft else None
        row.published = upgraded(row.published) if row.published else None
        row.updated_at = datetime.now(UTC)
        session.add(row)
        return _reply(found.slug, row)

    return await service.transaction(write)


async def appearance(service: Service, request: GetPortalAppearance) -> PortalAppearance:
    """Public: the portal's KB switches and its published theme, for `GET /api/v1/portals/{portal}/config`."""
    found = await portal(service, request.portal)
    row = await service.read(lambda s: s.get(Theme, found.slug))
    return PortalAppearance(portal=found.slug, switches={
        "portal_for_agents": found.portal_for_agents, "internal_kb": found.internal_kb,
        "show_only_internal": found.show_only_internal},
        theme=render(row.published if row and row.published else DEFAULT_THEME))
