"""The portals kb serves: learnt from auth on first use, with the portal's knowledge-base switches."""

from datetime import UTC, datetime

from sqlmodel import Session

from contracts import operations
from contracts import roles
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import GetKbSwitches, KbSettingsView, UpdateKbSwitches
from contracts.rpc import Actor, GetPortalInfo
from services.kb import domain
from services.kb.models import KbPortal
from services.runtime.readmodel import insert_once
from services.runtime.service import Service


async def portal(service: Service, slug: str) -> KbPortal:
    """The portal, asking auth (which owns portals) the first time; `unknown_portal` when there is none."""
    known = await service.read(lambda session: session.get(KbPortal, slug))
    if known is not None:
        return known
    info = await service.client.call(operations.auth.portal_info, GetPortalInfo(portal=slug))

    def remember(session: Session) -> KbPortal:
        insert_once(session, KbPortal, {"slug": info.slug, "org_id": info.org_id, "kb_id": info.kb_id,
                                        "updated_at": datetime.now(UTC)}, key="slug")
        found = session.get(KbPortal, slug)
        assert found is not None
        return found

    return await service.transaction(remember)


async def admin_portal(service: Service, actor: Actor, slug: str, *, editor: bool = True) -> KbPortal:
    found = await portal(service, slug)
    if found.org_id != actor.org_id:
        raise ServiceError(ErrorCode.unknown_portal, "There is no such portal in your organisation.")
    if editor:
        domain.require_editor(actor.role)
    return found


def switches_view(row: KbPortal) -> KbSettingsView:
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

    return await service.transaction(apply)
