"""The portals kb serves: learnt from auth on first use, with the portal's knowledge-base switches.

Each replica keeps the portals it has read in memory (`services.runtime.announced.AnnouncedCache`), so that
a reader's request reads no database for them. A portal's switches change only through `update_switches`,
which announces the portal's slug on `contracts.subjects.KB_PORTALS_CHANGED` after its commit: every
replica forgets it before the admin is answered. Each portal is read again at least every `PORTAL_MAX_AGE_SECONDS` (a change made to the
database by hand, `portico seed`).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from contracts import operations
from contracts import roles
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import GetKbSwitches, KbSettingsView, UpdateKbSwitches
from contracts.rpc import Actor, GetPortalInfo
from contracts.subjects import KB_PORTALS_CHANGED
from services.kb import domain
from services.kb.models import KbPortal
from services.runtime.announced import AnnouncedCache
from services.runtime.readmodel import insert_once
from services.runtime.service import Service

PORTAL_MAX_AGE_SECONDS = 5.0


@dataclass(frozen=True)
class KnownPortal:
    """A portal as kb read it (`kb_portals`): whose it is, and its switches."""

    slug: str
    org_id: str
    kb_id: str
    portal_for_agents: bool
    internal_kb: bool
    show_only_internal: bool

    @classmethod
    def of(cls, row: KbPortal) -> "KnownPortal":
        return cls(slug=row.slug, org_id=row.org_id, kb_id=row.kb_id, portal_for_agents=row.portal_for_agents,
                   internal_kb=row.internal_kb, show_only_internal=row.show_only_internal)


def install(service: Service) -> AnnouncedCache[KnownPortal]:
    """Give the service its portal cache (`service.resources["portals"]`), kept current as described above."""
    cache: AnnouncedCache[KnownPortal] = AnnouncedCache(KB_PORTALS_CHANGED, max_age=PORTAL_MAX_AGE_SECONDS)
    service.resources["portals"] = cache

    async def listen(service: Service) -> None:
        await cache.listen(service.broker.connection)

    service.on_start(listen)
    return cache


def cache_of(service: Service) -> AnnouncedCache[KnownPortal]:
    """The replica's portal cache, as `install` gave it."""
    cache: AnnouncedCache[KnownPortal] = service.resources["portals"]
    return cache


async def known_portal(service: Service, slug: str) -> KnownPortal | None:
    """The portal as this replica keeps it (read from the database when not fresh); None when kb has not met
    it yet."""
    def read(session: Session) -> KnownPortal | None:
        row = session.get(KbPortal, slug)
        return KnownPortal.of(row) if row is not None else None

    return await cache_of(service).aget(slug, lambda: service.read(read))


async def portal(service: Service, slug: str) -> KnownPortal:
    """The portal, asking auth (which owns portals) the first time; `unknown_portal` when there is none."""
    known = await known_portal(service, slug)
    if known is not None:
        return known
    info = await service.client.call(operations.auth.portal_info, GetPortalInfo(portal=slug))

    def remember(session: Session) -> KnownPortal:
        insert_once(session, KbPortal, {"slug": info.slug, "org_id": info.org_id, "kb_id": info.kb_id,
                                        "updated_at": datetime.now(UTC)}, key="slug")
        found = session.get(KbPortal, slug)
        assert found is not None
        return KnownPortal.of(found)

    return await service.transaction(remember)


async def admin_portal(service: Service, actor: Actor, slug: str, *, editor: bool = True) -> KnownPortal:
    found = await portal(service, slug)
    if found.org_id != actor.org_id:
        raise ServiceError(ErrorCode.unknown_portal, "There is no such portal in your organisation.")
    if editor:
        domain.require_editor(actor.role)
    return found


def switches_view(row: KbPortal | KnownPortal) -> KbSettingsView:
    return KbSettingsView(portal=row.slug, portal_for_agents=row.portal_for_agents, internal_kb=row.internal_kb,
                          show_only_internal=row.show_only_internal)


async def get_switches(service: Service, request: GetKbSwitches) -> KbSettingsView:
    return switches_view(await admin_portal(service, request.actor, request.portal))


async def update_switches(service: Service, request: UpdateKbSwitches) -> KbSettingsView:
    if not roles.can_administer(request.actor.role):
        raise ServiceError(ErrorCode.forbidden, "Only admins change the portal's switches.")
    found = await admin_portal(service, request.actor, request.portal, editor=False)

    def apply(session: Session) -> KbSettingsView:
        row = session.get(KbPortal, found.slug)
        assert row is not None
        for name, value in request.switches.model_dump(exclude_none=True).items():
            setattr(row, name, value)
        row.content_version += 1  # who sees what changed
        row.updated_at = datetime.now(UTC)
        session.add(row)
        return switches_view(row)

    view = await service.transaction(apply)
    await cache_of(service).announce(found.slug)  # every replica forgets it before the admin is answered
    return view
