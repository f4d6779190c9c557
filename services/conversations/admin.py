"""Admin: a portal's conversation settings, and the org's secret for inbound channel requests."""

import secrets
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from contracts import operations
from contracts import roles
from contracts.conversations import (
    ChannelSecret,
    ConversationSettingsView,
    DetailAttribute,
    GetConversationSettings,
    RotateChannelSecret,
    UpdateConversationSettings,
)
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Actor, GetPortal, PortalView
from services.conversations import store
from services.conversations.models import ChannelSecret as ChannelSecretRow
from services.conversations.models import PortalConfig
from services.runtime.service import Service
from services.runtime.settings import Settings

PREVIOUS_SECRET_GRACE = timedelta(hours=24)


def _require_admin(actor: Actor) -> None:
    if not roles.can_administer(actor.role):
        raise ServiceError(ErrorCode.forbidden, "Only admins (or an org.admin API key) change these settings.")


async def _portal_of(service: Service, actor: Actor, portal: str) -> PortalView:
    """auth owns portals: it says whether this one exists in the actor's org."""
    _require_admin(actor)
    return await service.client.call(operations.auth.get_portal, GetPortal(actor=actor, portal=portal))


def _view(config: PortalConfig | store.PortalRules, settings: Settings) -> ConversationSettingsView:
    limits = store.limits_of(config, settings)
    return ConversationSettingsView(
        portal=config.portal, my_conversations_enabled=config.my_conversations_enabled,
        reopen_enabled=config.reopen_enabled, reopen_policy=config.reopen_policy,
        reopen_within_days=config.reopen_within_days,
        detail_attributes=[DetailAttribute(**a) for a in config.detail_attributes],
        max_body_chars=limits.max_body_chars, max_files=limits.max_files, max_file_bytes=limits.max_file_bytes)


async def get_settings(service: Service, request: GetConversationSettings) -> ConversationSettingsView:
    portal = await _portal_of(service, request.actor, request.portal)
    config = await service.read(store.stored_portal_config, portal.slug, portal.org_id)
    return _view(config, service.settings)


async def update_settings(service: Service, request: UpdateConversationSettings) -> ConversationSettingsView:
    portal = await _portal_of(service, request.actor, request.portal)

    def apply(session: Session) -> ConversationSettingsView:
        config = session.get(PortalConfig, portal.slug) or PortalConfig(portal=portal.slug, org_id=portal.org_id,
                                                                        updated_at=store.now())
        changes = request.settings.model_dump(exclude_none=True)
        names = [a["attribute"] for a in changes.get("detail_attributes", [])]
        if len(names) != len(set(names)):
            raise ServiceError(ErrorCode.invalid_setting, "detail_attributes: each attribute at most once.")
        for name, value in changes.items():
            setattr(config, name, value)
        config.updated_at = store.now()
        session.add(config)
        return _view(config, service.settings)

    view = await service.transaction(apply)
    await store.settings_cache(service.engine).announce(portal.slug)
    return view


async def listen_for_settings_changes(service: Service) -> None:
    """Hear every replica's settings changes (`on_start`, before requests are answered)."""
    await store.settings_cache(service.engine).listen(service.broker.connection)


def rotate_channel_secret(session: Session, request: RotateChannelSecret) -> ChannelSecret:
    """A new secret at once; the one it replaces keeps working for a day, so senders can switch over."""
    _require_admin(request.actor)
    now = datetime.now(UTC)
    row = session.get(ChannelSecretRow, request.actor.org_id)
    secret = secrets.token_urlsafe(32)
    if row is None:
        row = ChannelSecretRow(org_id=request.actor.org_id, secret=secret, created_at=now)
    else:
        row.previous_secret, row.previous_until = row.secret, now + PREVIOUS_SECRET_GRACE
        row.secret, row.created_at = secret, now
    session.add(row)
    return ChannelSecret(org_id=row.org_id, secret=secret)
