"""What every portal page needs before it renders: the portal (name, sign-in methods, switches, limits,
theme) and who is looking (a customer of this portal, staff, or nobody).

The portal's public configuration is read through the services' operations and kept for a couple of
seconds per gateway: a page view costs one RPC for its own content, not four. Settings an admin
changes show on the pages within `PORTAL_TTL` seconds.
"""

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Literal

from starlette.requests import Request

from contracts import operations
from contracts.conversations import GetPortalFeatures, PortalFeatures, Viewer
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import GetPortalAppearance, Reader, RenderedView, ThemeAction, ThemeState
from contracts.roles import Permission, can
from contracts.rpc import Actor, GetPortalInfo
from contracts.sessions import SessionRecord, session_key
from services.gateway.auth import read_session

PORTAL_TTL = 2.0
# An editor's `?preview=draft` is remembered for an hour on this portal's pages, so following links keeps
# the draft theme; `?preview=off` (the banner's "Stop previewing") ends it. Only editors are ever shown it.
PREVIEW_COOKIE = "portico_preview"
PREVIEW_SECONDS = 3600


@dataclass(frozen=True)
class Portal:
    slug: str
    name: str
    org_id: str
    kb_id: str
    sign_in_methods: list[str]
    switches: dict[str, bool]
    features: PortalFeatures
    theme: ThemeState | None
    preview: str = ""  # for an editor previewing: "draft" (the theme is the draft) or "no draft" (there is none)

    def view(self, name: str) -> RenderedView | None:
        """The theme of one view (`home`, `article`, `my_conversations`, `conversation_detail`)."""
        return self.theme.views.get(name) if self.theme else None


@dataclass(frozen=True)
class Visitor:
    """Who is looking at a portal page: `customer` and `anonymous` are signed in to this portal;
    `staff` signed in with the staff sign-in; `nobody` is signed out (or signed in elsewhere)."""

    kind: Literal["customer", "anonymous", "staff", "nobody"]
    record: SessionRecord | None = None
    token: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.kind != "nobody"

    @property
    def name(self) -> str:
        if self.record is None:
            return ""
        return self.record.display_name or self.record.email or ""

    def viewer(self) -> Viewer | None:
        """The conversations service's viewer, for a customer or anonymous session of this portal."""
        if self.record is None or self.token is None or self.kind not in ("customer", "anonymous"):
            return None
        record = self.record
        return Viewer(user_id=record.user_id, org_id=record.org_id, portal=record.portal or "",
                      kind=self.kind, method=record.method, session_key=session_key(self.token),
                      email=record.email, display_name=record.display_name)

    def reader(self) -> Reader:
        if self.record is None:
            return Reader(kind="anonymous")
        if self.kind == "staff":
            return Reader(kind="staff", org_id=self.record.org_id, role=self.record.role)
        return Reader(kind="customer", org_id=self.record.org_id)

    def actor(self) -> Actor | None:
        if self.kind != "staff" or self.record is None:
            return None
        return Actor(org_id=self.record.org_id, role=self.record.role or "", principal=f"user:{self.record.user_id}")


def _cache(app: object) -> dict[str, tuple[float, Portal]]:
    """What this gateway app keeps (per app: two apps in one process, as in tests, never share a portal)."""
    state = app.state  # type: ignore[attr-defined]
    if not hasattr(state, "portal_pages"):
        state.portal_pages = {}
    return state.portal_pages


async def load_portal(request: Request, slug: str) -> Portal:
    """The portal `slug` as its pages show it. Raises `ServiceError(unknown_portal)` (404) when there is none."""
    now = time.monotonic()
    kept = _cache(request.app)
    cached = kept.get(slug)
    if cached and cached[0] > now:
        return cached[1]
    rpc = request.app.state.rpc
    info = await rpc.call(operations.auth.portal_info, GetPortalInfo(portal=slug))
    appearance, features = await asyncio.gather(
        rpc.call(operations.kb.portal_appearance, GetPortalAppearance(portal=info.slug)),
        rpc.call(operations.conversations.portal_features, GetPortalFeatures(org_id=info.org_id, portal=info.slug)))
    portal = Portal(slug=info.slug, name=info.name, org_id=info.org_id, kb_id=info.kb_id,
                    sign_in_methods=list(info.sign_in_methods), switches=dict(appearance.switches),
                    features=features, theme=appearance.theme)
    kept[slug] = (now + PORTAL_TTL, portal)
    return portal


def forget_portal(app: object, slug: str | None = None) -> None:
    """Drop what `app` keeps of one portal (or of all): the next page reads it afresh."""
    if slug is None:
        _cache(app).clear()
    else:
        _cache(app).pop(slug, None)


async def visitor_of(request: Request, portal: Portal) -> Visitor:
    found = await read_session(request)
    if found is None:
        return Visitor("nobody")
    token, record = found
    if record.kind == "staff" and record.org_id == portal.org_id:
        return Visitor("staff", record, token)
    if record.kind in ("customer", "anonymous") and record.portal == portal.slug:
        return Visitor(record.kind, record, token)  # type: ignore[arg-type]
    return Visitor("nobody")


def wants_preview(request: Request) -> bool:
    """`?preview=draft`, or the preview cookie unless `?preview=off`."""
    asked = request.query_params.get("preview")
    if asked in ("draft", "off"):
        return asked == "draft"
    return request.cookies.get(PREVIEW_COOKIE) == "draft"


async def page_portal(request: Request, slug: str) -> tuple[Portal, Visitor]:
    """The portal and the visitor; an admin or content manager previewing (`?preview=draft`, then the preview
    cookie) sees the draft theme, or the published one while there is no draft. Anyone else: the published."""
    # Where the page's live-update stream starts (base.html): taken before anything the page shows is read.
    request.state.live_from = request.app.state.live.position
    portal = await load_portal(request, slug)
    visitor = await visitor_of(request, portal)
    if wants_preview(request) and visitor.kind == "staff" and visitor.record \
            and can(visitor.record.role, Permission.edit_articles):
        try:
            draft = await request.app.state.rpc.call(operations.kb.preview_theme,
                                                     ThemeAction(actor=visitor.actor(), portal=portal.slug))
        except ServiceError as error:
            if error.code is not ErrorCode.not_found:
                raise
            draft = None
        portal = replace(portal, theme=draft or portal.theme, preview="draft" if draft else "no draft")
    return portal, visitor
