"""Who is calling: a session (its token in the cookie, or as `Authorization: Bearer ps_...` from the chat
widget's frame; read from the shared `sessions` bucket) or a Bearer API key (`pk_...`)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import nats.js.errors
from fastapi import Depends, Request, Response
from pydantic import BaseModel

from contracts import operations
from contracts.conversations import Viewer
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Actor, GetPortalInfo, VerifyApiKey
from contracts.sessions import SESSION_COOKIE, SessionRecord, is_session_token, session_key
from services.gateway.deps import PortalSlug, Rpc
from services.runtime.rpc import RpcClient

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


def bearer_session_token(request: Request) -> str | None:
    """The session token sent as `Authorization: Bearer <token>` (the chat widget's frame, which has no
    cookie where third-party cookies are blocked), or None: no such header, or an API key there."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and is_session_token(value) else None


async def read_session(request: Request, *, touch: bool = True) -> tuple[str, SessionRecord] | None:
    """The live session of the request's bearer session token, else of its cookie, or None. `touch=False`
    reads without counting as the customer's activity (the live-update stream re-checks a session that
    way: an open tab is not use)."""
    token = bearer_session_token(request) or request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    kv = request.app.state.sessions()
    try:
        entry = await kv.get(session_key(token))
    except nats.js.errors.KeyNotFoundError:
        return None
    stored = SessionRecord.model_validate_json(entry.value or b"{}")
    # The portal's lifetime and idle timeout as they are now, not as they were when the session opened.
    record = stored.under(request.app.state.session_policies.get(stored.portal))
    now = datetime.now(UTC)
    if not record.is_live(now):
        return None
    if touch and now - record.last_seen_at > TOUCH_EVERY:  # keeps the idle timer fair without a write a request
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


async def _staff_actor(request: Request, rpc: RpcClient, api: str) -> Actor:
    """An API key (`Authorization: Bearer ...`) or a signed-in staff member (the session cookie, or the
    session token as bearer: told from a key by its form, `contracts.sessions.is_session_token`); the
    service checks the role."""
    header = request.headers.get("authorization", "")
    if header and bearer_session_token(request) is None:  # a session token as bearer is read below
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ServiceError(ErrorCode.unauthorized, "Use `Authorization: Bearer <API key>`.")
        identity = await rpc.call(operations.auth.verify_api_key, VerifyApiKey(
            key=key.strip(), client_ip=request.client.host if request.client else ""))
        return Actor(org_id=identity.org_id, role=identity.role, principal=f"key:{identity.key_id}",
                     name=identity.name)
    found = await read_session(request)
    if found is None and header:
        raise ServiceError(ErrorCode.unauthorized, "This session has ended, or never was; sign in again.")
    if found is None:
        raise ServiceError(ErrorCode.unauthorized, f"Sign in as staff or send an API key to use the {api} API.")
    _, record = found
    if record.kind != "staff":
        raise ServiceError(ErrorCode.forbidden, f"Only staff may use the {api} API.")
    return Actor(org_id=record.org_id, role=record.role or "", principal=f"user:{record.user_id}")


async def require_admin(request: Request, rpc: Rpc) -> Actor:
    """An `org.admin` API key or a signed-in staff admin (auth and conversations check the role)."""
    return await _staff_actor(request, rpc, "admin")


async def require_agent(request: Request, rpc: Rpc) -> Actor:
    """A signed-in agent or admin, or an `org.agent` / `org.admin` API key."""
    return await _staff_actor(request, rpc, "agent")


async def require_viewer(request: Request, rpc: Rpc, portal: str = PortalSlug) -> Viewer:
    """The customer (or anonymous browser) signed in to this portal.

    Raises `unauthorized` without a live session, `forbidden` for staff, `unknown_portal` (404) when
    `portal` does not exist, `wrong_portal` (403) when the session belongs to another portal.
    """
    token, record = await require_session(request)
    if record.kind == "staff" or record.portal is None:
        raise ServiceError(ErrorCode.forbidden, "Staff work conversations in the agent API (/api/v1/agent/...).")
    if record.portal != portal:
        # Only on this path: a missing portal is named as such, not as someone else's.
        await rpc.call(operations.auth.portal_info, GetPortalInfo(portal=portal))
        raise ServiceError(ErrorCode.wrong_portal,
                           f"This session belongs to portal '{record.portal}'; sign in to '{portal}' first.")
    return Viewer(user_id=record.user_id, org_id=record.org_id, portal=record.portal, kind=record.kind,
                  method=record.method, session_key=session_key(token), email=record.email,
                  display_name=record.display_name)


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
AgentActor = Annotated[Actor, Depends(require_agent)]
CustomerViewer = Annotated[Viewer, Depends(require_viewer)]
