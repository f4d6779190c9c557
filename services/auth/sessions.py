"""Opening and ending sessions in the `sessions` bucket, and remembering SSO token ids (`jti`)."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import nats.js.errors
from nats.js.kv import KeyValue

from contracts.errors import ErrorCode, ServiceError
from contracts.sessions import (
    MAX_SESSION_DAYS,
    SESSIONS_BUCKET,
    SessionRecord,
    SignInMethod,
    session_key,
)
from services.auth.limits import RATE_BUCKET, RateLimiter
from services.auth.models import Portal, User
from services.runtime.kv import ensure_bucket
from services.runtime.service import Service

JTI_BUCKET = "sso_jti"
JTI_WINDOW = timedelta(hours=2)  # longer than any token's accepted age plus leeway


async def open_buckets(service: Service) -> None:
    js = service.broker.config.connection_state.stream
    service.resources["sessions"] = await ensure_bucket(
        js, SESSIONS_BUCKET, ttl_seconds=MAX_SESSION_DAYS * 86400, description="Portico sign-in sessions")
    service.resources["jti"] = await ensure_bucket(
        js, JTI_BUCKET, ttl_seconds=JTI_WINDOW.total_seconds(), description="SSO token ids already used")
    service.resources["limits"] = RateLimiter(await ensure_bucket(
        js, RATE_BUCKET, ttl_seconds=3600, description="Sign-in rate limit counters"),
        scale=service.settings.rate_limit_scale)


def session_for(user: User, *, method: SignInMethod, portal: Portal | None, lifetime: timedelta,
                idle: timedelta) -> SessionRecord:
    now = datetime.now(UTC)
    return SessionRecord(
        user_id=user.id, org_id=user.org_id, portal=portal.slug if portal else None,
        kind=user.kind, role=user.role, email=user.email if user.kind != "anonymous" else None,  # type: ignore[arg-type]
        display_name=user.display_name, method=method, created_at=now, expires_at=now + lifetime,
        idle_timeout_seconds=int(idle.total_seconds()), last_seen_at=now)


async def open_session(kv: KeyValue, record: SessionRecord) -> str:
    token = secrets.token_urlsafe(32)
    await kv.put(session_key(token), record.model_dump_json().encode())
    return token


async def end_session(kv: KeyValue, token: str) -> bool:
    key = session_key(token)
    try:
        await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        return False
    await kv.purge(key)
    return True


async def remember_jti(kv: KeyValue, portal_id: str, jti: str) -> None:
    """Refuse a token id seen before on this portal (replay)."""
    key = hashlib.sha256(f"{portal_id}:{jti}".encode()).hexdigest()
    try:
        await kv.create(key, b"1")
    except nats.js.errors.KeyWrongLastSequenceError as exc:
        raise ServiceError(ErrorCode.token_replayed, "This token (`jti`) was already used; sign a new one.") from exc
