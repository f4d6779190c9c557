"""Admin endpoints: API keys, portals, their sign-in settings and secrets (staff accounts: `staff.py`)."""

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import (
    ApiKeyCreated,
    ApiKeyIdentity,
    ApiKeyList,
    ApiKeyView,
    CreateApiKey,
    CreatePortal,
    GetPortal,
    KbSecret,
    KbSettings,
    ListApiKeys,
    NewSecret,
    PortalView,
    RevokeApiKey,
    RevokeSecret,
    RotateSecret,
    SecretRevoked,
    UpdatePortalSettings,
    VerifyApiKey,
)
from services.auth import caches, limits, portals
from services.auth.domain import hash_api_key, new_api_key
from services.auth.models import ApiKey, Portal, PortalSecret
from services.auth.sessions import publish_session_policy
from services.runtime.service import Service


async def verify_api_key(service: Service, request: VerifyApiKey) -> ApiKeyIdentity:
    """The key's org and role, or `unauthorized`; wrong keys count against the client address
    (`limits.API_KEY_FAILURES_PER_IP`: `rate_limited` while it must wait). Live keys are read from this
    replica's memory (`caches.ApiKeyCache`, by the key's hash), which a revocation empties on every replica
    before it is answered. A wrong key is announced to the gateways before it is answered
    (`caches.ApiKeyCache.refused`: they keep verified keys, and forget those of that address). Tries while
    the address waits are not announced: the wrong key that began the wait was, and no key is verified (so
    none kept) from the address until the wait ends; announcing each would let a blocked client make every
    gateway sweep its cache at will."""
    limiter = service.resources["limits"]
    await limiter.guard(limits.API_KEY_FAILURES_PER_IP, request.client_ip)
    identity = await caches.api_keys(service).get(hash_api_key(request.key))
    await limiter.settle(identity is not None, limits.API_KEY_FAILURES_PER_IP, request.client_ip)
    if identity is None:
        await caches.api_keys(service).refused(request.client_ip)
        raise ServiceError(ErrorCode.unauthorized, "Unknown, expired or revoked API key.")
    return identity


def get_portal(session: Session, request: GetPortal) -> PortalView:
    return portals.portal_view(session, portals.admin_portal(session, request.actor, request.portal))


async def create_portal(service: Service, request: CreatePortal) -> PortalView:
    def create(session: Session) -> PortalView:
        portals.require_admin(request.actor, request.actor.org_id)
        portal = portals.create_portal(session, org_id=request.actor.org_id, slug=request.slug, name=request.name)
        return portals.portal_view(session, portal)

    view = await service.transaction(create)
    await caches.portals(service).announce(view.slug)
    return view


async def update_portal_settings(service: Service, request: UpdatePortalSettings) -> PortalView:
    """Changes a portal's settings; a new session lifetime or idle timeout reaches every gateway at once
    (`publish_session_policy`), so open sessions end by the new, shorter one."""
    def update(session: Session) -> tuple[PortalView, Portal]:
        portal = portals.admin_portal(session, request.actor, request.portal)
        portals.apply_settings(portal, request.settings)
        session.add(portal)
        return portals.portal_view(session, portal), portal

    view, portal = await service.transaction(update)
    await caches.portals(service).announce(portal.slug)
    await publish_session_policy(service, portal)
    return view


async def rotate_secret(service: Service, request: RotateSecret) -> NewSecret:
    """A new secret, accepted at once on every replica; the current ones keep working for the grace period,
    then stop."""
    created = await service.transaction(_rotate_secret, request)
    await caches.portals(service).announce(request.portal)
    return created


def _rotate_secret(session: Session, request: RotateSecret) -> NewSecret:
    portal = portals.admin_portal(session, request.actor, request.portal)
    if request.replaces is not None:
        live = portals.live_secrets(session, portal)
        if live and live[0].kid != request.replaces:
            raise ServiceError(ErrorCode.conflict, f"A newer secret ('{live[0].kid}') was made after '{request.replaces}'; "
                                                   "nothing was changed.")
    key, retire_at = portals.rotate_secret(session, portal, timedelta(minutes=request.grace_minutes))
    return NewSecret(kid=key.kid, secret=key.secret, previous_retire_at=retire_at.isoformat())


async def revoke_secret(service: Service, request: RevokeSecret) -> SecretRevoked:
    """The secret stops working at once, on every replica (`caches.PortalCache.changed`) before this answers."""
    revoked = await service.transaction(_revoke_secret, request)
    await caches.portals(service).announce(request.portal)
    return revoked


def _revoke_secret(session: Session, request: RevokeSecret) -> SecretRevoked:
    portal = portals.admin_portal(session, request.actor, request.portal)
    secret = session.get(PortalSecret, request.kid)
    if secret is None or secret.portal_id != portal.id:
        raise ServiceError(ErrorCode.not_found, f"Portal '{portal.slug}' has no secret '{request.kid}'.")
    secret.revoked_at = datetime.now(UTC)
    session.add(secret)
    return SecretRevoked(kid=secret.kid)


def kb_settings(session: Session, request: KbSettings) -> KbSecret:
    """Kustomer's `GET /v1/auth/kb/{kb_id}/settings`: the newest live secret of the portal with that kb_id."""
    portal = session.exec(select(Portal).where(Portal.kb_id == request.kb_id)).first()
    if portal is None or portal.org_id != request.actor.org_id:
        raise ServiceError(ErrorCode.not_found, "No knowledge base with that id in your organisation.")
    portals.require_admin(request.actor, portal.org_id)
    live = portals.live_secrets(session, portal)
    if not live:
        raise ServiceError(ErrorCode.not_found, "This portal has no live secret; create one.")
    return KbSecret(secret=live[0].secret)


def _key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(id=key.id, name=key.name, role=key.role, prefix=key.prefix, created_at=key.created_at,
                      expires_at=key.expires_at, revoked=key.revoked_at is not None)


def create_api_key(session: Session, request: CreateApiKey) -> ApiKeyCreated:
    portals.require_admin(request.actor, request.actor.org_id)
    now = datetime.now(UTC)
    if request.expires_at is not None and request.expires_at.astimezone(UTC) <= now:
        raise ServiceError(ErrorCode.invalid_request, "expires_at must be in the future.")
    raw = new_api_key()
    key = ApiKey(id=new_id(), org_id=request.actor.org_id, name=request.name, role=request.role, prefix=raw[:8],
                 key_hash=hash_api_key(raw), created_at=now, expires_at=request.expires_at)
    session.add(key)
    return ApiKeyCreated(**_key_view(key).model_dump(), key=raw)


def list_api_keys(session: Session, request: ListApiKeys) -> ApiKeyList:
    portals.require_admin(request.actor, request.actor.org_id)
    keys = session.exec(select(ApiKey).where(ApiKey.org_id == request.actor.org_id)
                        .order_by(col(ApiKey.created_at))).all()
    return ApiKeyList(keys=[_key_view(k) for k in keys])


async def revoke_api_key(service: Service, request: RevokeApiKey) -> ApiKeyView:
    """The key stops working at once, on every replica (`caches.ApiKeyCache.changed`) before this answers;
    `not_found` for an id that is not a key of the actor's org."""
    view = await service.transaction(_revoke_api_key, request)
    await caches.api_keys(service).announce(view.id)
    return view


def _revoke_api_key(session: Session, request: RevokeApiKey) -> ApiKeyView:
    portals.require_admin(request.actor, request.actor.org_id)
    key = session.get(ApiKey, request.key_id)
    if key is None or key.org_id != request.actor.org_id:
        raise ServiceError(ErrorCode.not_found, "No such API key in your organisation.")
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    session.add(key)
    return _key_view(key)
