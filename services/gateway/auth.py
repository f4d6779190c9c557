"""Who is calling: the session cookie (read from the shared `sessions` bucket) or a Bearer API key."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import nats.js.errors
from fastapi import Depends, Request, Response
from pydantic import BaseModel

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Actor, ApiKeyIdentity, VerifyApiKey
from contracts.sessions import SESSION_COOKIE, SessionRecord, session_key
from services.gateway.deps import Rpc

TOUCH_EVERY = timedelta(minutes=1)


class SessionView(BaseModel):
    """`GET /api/v1/session`: who is signed in, how, and until when."""

    user_id: str
    kind: str
    role: str | None
    email: str | None
    display_name: str | None
    portal: str | None
    method: str
    created_at: datetime
    expires_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, record: SessionRecord) -> "SessionView":
        return cls(**record.model_dump(include=set(cls.model_fields) - {"ends_at"}), ends_at=record.ends_at())


async def read_session(request: Request) -> tuple[str, SessionRecord] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    kv = request.app.state.sessions()
    try:
        entry = await kv.get(session_key(token))
    except nats.js.errors.KeyNotFoundError:
        return None
    record = SessionRecord.model_validate_json(entry.value or b"{}")
    now = datetime.now(UTC)
    if not record.is_live(now):
        return None
    if now - record.last_seen_at > TOUCH_EVERY:  # keeps the idle timer fair without a write a request
        record.last_seen_at = now
        try:
            await kv.update(session_key(token), record.model_dump_json().encode(), last=entry.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            pass  # another request touched it first
    return token, record


async def require_session(request: Request) -> tuple[str, SessionRecord]:
    found = await read_session(request)
    if found is None:
        raise ServiceError(ErrorCode.unauthorized, "Not signed in, or the session has ended; sign in again.")
    return found


async def require_admin(request: Request, rpc: Rpc) -> Actor:
    """An `org.admin` API key (`Authorization: Bearer ...`) or a signed-in staff admin."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ServiceError(ErrorCode.unauthorized, "Use `Authorization: Bearer <API key>`.")
        identity = await rpc.call("auth", "verify_api_key", VerifyApiKey(key=key.strip()), ApiKeyIdentity)
        return Actor(org_id=identity.org_id, role=identity.role, principal=f"key:{identity.key_id}")
    found = await read_session(request)
    if found is None:
        raise ServiceError(ErrorCode.unauthorized, "Sign in as an admin or send an org.admin API key.")
    _, record = found
    if record.kind != "staff":
        raise ServiceError(ErrorCode.forbidden, "Only staff may use the admin API.")
    return Actor(org_id=record.org_id, role=record.role or "", principal=f"user:{record.user_id}")


def cookie_secure(request: Request) -> bool:
    """Cookies are `Secure` everywhere but in development (plain http on 127.0.0.1)."""
    return request.app.state.settings.env != "dev"


def set_session_cookie(response: Response, token: str, record: SessionRecord, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int((record.expires_at - record.created_at).total_seconds()),
                        httponly=True, secure=secure, samesite="lax", path="/")


def clear_session_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, secure=secure, samesite="lax", path="/")


CurrentSession = Annotated[tuple[str, SessionRecord], Depends(require_session)]
AdminActor = Annotated[Actor, Depends(require_admin)]
