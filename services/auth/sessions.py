"""Opening and ending sessions in the `sessions` bucket, and remembering SSO token ids (`jti`)."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

import nats.js.errors
from nats.js.kv import KeyValue
from sqlmodel import Session, select

from contracts.errors import ErrorCode, ServiceError
from contracts.events import IdentityLinked
from contracts.subjects import SESSIONS_ENDED
from contracts.sessions import (
    MAX_SESSION_DAYS,
    SESSION_POLICIES_BUCKET,
    SESSION_TOKEN_PREFIX,
    SESSIONS_BUCKET,
    SessionPolicy,
    SessionRecord,
    SignInMethod,
    session_key,
)
from services.auth.limits import RATE_BUCKET, RateLimiter, open_window_bucket
from services.auth.models import Portal, User
from services.runtime.announced import publish_names
from services.runtime.kv import ensure_bucket
from services.runtime.outbox import record_event
from services.runtime.service import Service

JTI_BUCKET = "sso_jti"
SIGN_ON_BUCKET = "sign_on_state"
JTI_WINDOW = timedelta(hours=2)  # longer than any token's accepted age plus leeway

async def open_buckets(service: Service) -> None:
    js = service.broker.config.connection_state.stream
    replicas = service.settings.resolved_nats_replicas
    service.resources["sessions"] = await ensure_bucket(
        js, SESSIONS_BUCKET, ttl_seconds=MAX_SESSION_DAYS * 86400, description="Portico sign-in sessions",
        replicas=replicas)
    service.resources["jti"] = await ensure_bucket(
        js, JTI_BUCKET, ttl_seconds=JTI_WINDOW.total_seconds(), description="SSO token ids already used",
        replicas=replicas)
    service.resources["sign_on_state"] = await ensure_bucket(
        js, SIGN_ON_BUCKET, ttl_seconds=15 * 60, description="Custom sign-on logins in progress", replicas=replicas)
    service.resources["limits"] = RateLimiter(await ensure_bucket(
        js, RATE_BUCKET, ttl_seconds=3600, description="Sign-in rate limit counters", replicas=replicas),
        scale=service.settings.rate_limit_scale, windows=await open_window_bucket(js, replicas),
        reopen_windows=lambda: open_window_bucket(js, replicas))
    service.resources["session_policies"] = await ensure_bucket(
        js, SESSION_POLICIES_BUCKET, ttl_seconds=0, replicas=replicas,
        description="Each portal's current session lifetime and idle timeout")
    # Heals a write lost between a settings commit and its publication (see `publish_session_policy`).
    for portal in await service.read(lambda session: list(session.exec(select(Portal)).all())):
        await publish_session_policy(service, portal)


def session_policy(portal: Portal) -> SessionPolicy:
    return SessionPolicy(lifetime_seconds=portal.session_lifetime_hours * 3600,
                         idle_timeout_seconds=portal.idle_timeout_minutes * 60)


async def publish_session_policy(service: Service, portal: Portal) -> None:
    """Tell every gateway the portal's current session lifetime and idle timeout (bucket
    `session_policies`, key: the portal's slug); they apply it to open sessions at once. Written after
    the settings are committed; a write that fails is made again when auth next starts."""
    policy = session_policy(portal)
    kv = service.resources["session_policies"]
    try:
        entry = await kv.get(portal.slug)
        if entry.value == policy.model_dump_json().encode():
            return
    except nats.js.errors.KeyNotFoundError:
        pass
    await kv.put(portal.slug, policy.model_dump_json().encode())


def session_for(user: User, *, method: SignInMethod, portal: Portal | None, lifetime: timedelta | None = None,
                idle: timedelta | None = None) -> SessionRecord:
    """A session record; its lifetime and idle timeout are the portal's unless given."""
    if lifetime is None or idle is None:
        assert portal is not None, "a session without a portal needs its own lifetime and idle timeout"
        lifetime = lifetime or timedelta(hours=portal.session_lifetime_hours)
        idle = idle or timedelta(minutes=portal.idle_timeout_minutes)
    now = datetime.now(UTC)
    # An unverified browser typed an address; it learns nothing of the account behind it (its name).
    display_name = None if method == "email_unverified" else user.display_name
    return SessionRecord(
        user_id=user.id, org_id=user.org_id, portal=portal.slug if portal else None,
        kind=user.kind, role=user.role, email=user.email if user.kind != "anonymous" else None,  # type: ignore[arg-type]
        display_name=display_name, method=method, created_at=now, expires_at=now + lifetime,
        idle_timeout_seconds=int(idle.total_seconds()), last_seen_at=now)


async def open_session(kv: KeyValue, record: SessionRecord) -> str:
    token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    await kv.put(session_key(token), record.model_dump_json().encode())
    return token


async def end_session(service: Service, token: str) -> SessionRecord | None:
    """Ends the session, on every gateway before this returns (`announce_ended`); returns what it was, or
    None when there was no such session."""
    kv = service.resources["sessions"]
    key = session_key(token)
    try:
        entry = await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        # Announced all the same: a logout tried again after its first announcement was lost still
        # reaches every gateway.
        await announce_ended(service, [key])
        return None
    await kv.purge(key)
    await announce_ended(service, [key])
    return SessionRecord.model_validate_json(entry.value or b"{}")


async def announce_ended(service: Service, keys: list[str]) -> None:
    """After sessions were purged from the `sessions` bucket: tell every gateway (`SESSIONS_ENDED`, the
    message: a session's bucket key, never its token) before the ending is answered, so that each forgets
    what it kept of them (`services.gateway.auth.SessionCache`). A failure is logged, not raised: the
    gateways then read those sessions again within their cache's `max_age` (10 s)."""
    if keys:
        await publish_names(service.broker.connection, SESSIONS_ENDED, keys)


async def replace_session(service: Service, token: str | None, user: User, portal: Portal,
                          method: Literal["sso", "custom_sign_on", "email", "email_unverified"],
                          new_token: str) -> None:
    """End the browser's earlier session; if it was anonymous or unverified, link that identity to `user`
    (for `email_unverified`: carry what the browser created over to its new session)."""
    if not token:
        return
    earlier = await end_session(service, token)
    if earlier is None or earlier.method not in ("anonymous", "email_unverified") or earlier.portal != portal.slug:
        return
    event = IdentityLinked(portal=portal.slug, from_user_id=earlier.user_id, from_method=earlier.method,
                           from_session=session_key(token), to_user_id=user.id, to_session=session_key(new_token),
                           method=method)

    def record(session: Session) -> None:
        record_event(session, event, org_id=user.org_id, aggregate_id=user.id, aggregate_version=1)

    await service.transaction(record)


async def remember_jti(kv: KeyValue, portal_id: str, jti: str) -> None:
    """Refuse a token id seen before on this portal (replay)."""
    key = hashlib.sha256(f"{portal_id}:{jti}".encode()).hexdigest()
    try:
        await kv.create(key, b"1")
    except nats.js.errors.KeyWrongLastSequenceError as exc:
        raise ServiceError(ErrorCode.token_replayed, "This token (`jti`) was already used; sign a new one.") from exc
