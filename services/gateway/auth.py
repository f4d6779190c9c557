"""Who is calling: a session (its token in the cookie, or as `Authorization: Bearer ps_...` from the chat
widget's frame; read from the shared `sessions` bucket and kept for a while by this gateway: `SessionCache`)
or a Bearer API key (`pk_...`, checked by auth and then kept for a while by this gateway: `ApiKeyCache`)."""

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import nats.js.errors
from fastapi import Depends, Request, Response
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from pydantic import BaseModel

from contracts import operations
from contracts.conversations import Viewer
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Actor, ApiKeyIdentity, GetPortalInfo, VerifyApiKey
from contracts.subjects import API_KEYS_CHANGED, API_KEYS_REFUSED, SESSIONS_ENDED
from contracts.sessions import SESSION_COOKIE, SessionRecord, is_session_token, session_key
from services.gateway.deps import PortalSlug, Rpc
from services.runtime.announced import AnnouncedCache
from services.runtime.rpc import RpcClient

TOUCH_EVERY = timedelta(minutes=1)
API_KEY_MAX_AGE_SECONDS = 60.0
SESSION_MAX_AGE_SECONDS = 10.0


class ApiKeyCache(AnnouncedCache[ApiKeyIdentity]):
    """API keys auth verified, by the key's SHA-256 and the client address it came from (never the key
    itself), so that a script's or an integration's every request does not ask auth again.

    Kept as auth keeps them (`services.runtime.announced`): forgotten when auth announces the key's change or
    revocation (`API_KEYS_CHANGED`, before it answers the admin, so the key is refused at once on every
    gateway), when the NATS connection was re-established, and after `API_KEY_MAX_AGE_SECONDS`; never used past
    the key's `expires_at`. Wrong keys are not kept (each goes to auth, which counts it against the address),
    and when auth refuses a key from an address it announces that address (`API_KEYS_REFUSED`): every
    gateway forgets what it kept for it and asks auth again, so an address that must wait waits for every key,
    on every gateway. Until `listen` is called nothing is kept.
    """

    def __init__(self, max_age: float = API_KEY_MAX_AGE_SECONDS) -> None:
        super().__init__(API_KEYS_CHANGED, max_age=max_age)

    async def listen(self, connection: Client) -> None:
        await connection.subscribe(API_KEYS_REFUSED, cb=self._refused)
        await super().listen(connection)

    async def _refused(self, message: Msg) -> None:
        address = message.data.decode()
        self.forget_where(lambda entry, _: entry.partition(" ")[2] == address)

    def _drop(self, key_id: str) -> None:
        for entry, identity in self.entries():
            if identity is not None and identity.key_id == key_id:
                self._known.pop(entry, None)  # (the lock is held: `forget` calls this)

    async def identity(self, key: str, client_ip: str,
                       verify: Callable[[], Awaitable[ApiKeyIdentity]]) -> ApiKeyIdentity:
        """Who `key` speaks for when it comes from `client_ip`: as kept, else `verify()` (auth's answer; its
        `ServiceError` is raised as it is, and nothing is kept)."""
        if self._connection is None:  # not hearing auth's announcements yet: keep nothing
            return await verify()
        entry = f"{hashlib.sha256(key.encode()).hexdigest()} {client_ip}"
        now = datetime.now(UTC)
        found = await self.aget(entry, verify)
        assert found is not None  # verify() answers an identity or raises
        if found.expires_at is not None and found.expires_at <= now:  # expired while kept: auth refuses it
            self.forget_where(lambda key, _: key == entry)
            return await verify()
        return found


@dataclass(frozen=True)
class KeptSession:
    """A session as the `sessions` bucket holds it (before its portal's current policy), and the revision
    it was read or last written at (what the idle-timeout touch updates against)."""

    record: SessionRecord  # never changed in place: a touch keeps a copy
    revision: int


class SessionCache(AnnouncedCache[KeptSession]):
    """Sessions by their bucket key (the token's SHA-256, never the token), as this gateway last read or
    touched them, so that a request reads no KV entry.

    Kept as every announced cache is (`services.runtime.announced`): forgotten when auth announces the
    session's end (`SESSIONS_ENDED`: a logout, a sign-in replacing it, a staff member disabled or given
    another role; published before auth answers, so the session is refused at once on every gateway), when
    the NATS connection was re-established, when the portal's session policy changes (`forget_portal`), and
    after `SESSION_MAX_AGE_SECONDS`. Another gateway's idle-timeout touch makes what is kept here older than
    the truth, never younger: a kept session that looks ended is read again before it is refused
    (`read_session`). Missing sessions are not kept. Until `listen` is called nothing is kept.
    """

    def __init__(self, max_age: float = SESSION_MAX_AGE_SECONDS) -> None:
        super().__init__(SESSIONS_ENDED, max_age=max_age)
        # Bucket keys of sessions heard ended -> when, for `max_age`: a read from a bucket replica that
        # has not yet applied the purge must not keep an ended session (a key is never used again).
        self._ended: dict[str, float] = {}

    async def _heard(self, message: Msg) -> None:
        if message.data:
            self.ended(message.data.decode())
        else:
            self.forget()

    def ended(self, key: str) -> None:
        """The session of bucket key `key` has ended (heard from auth, or logged out through this gateway):
        forget it, and refuse it without reading for `max_age` seconds."""
        now = time.monotonic()
        self._ended.pop(key, None)
        self._ended[key] = now
        while self._ended:  # oldest first (insertion order)
            oldest, when = next(iter(self._ended.items()))
            if now - when <= self.max_age:
                break
            del self._ended[oldest]
        self.forget(key)

    def _is_ended(self, key: str) -> bool:
        when = self._ended.get(key)
        return when is not None and time.monotonic() - when <= self.max_age

    async def read(self, kv: KeyValue, key: str, *, again: bool = False) -> tuple[KeptSession | None, bool]:
        """(the session of bucket key `key` or None, whether it was read from `kv` just now). `again`: read
        it from `kv` even when kept."""
        read: list[bool] = []

        async def load() -> KeptSession | None:
            read.append(True)
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return None
            return KeptSession(SessionRecord.model_validate_json(entry.value or b"{}"), entry.revision or 0)

        if self._connection is None:  # not hearing auth's announcements yet: keep nothing
            return await load(), True
        if self._is_ended(key):
            return None, True
        if again:
            self.forget(key)
        return await self.aget(key, load), bool(read)

    def touched(self, key: str, kept: KeptSession, generation: int) -> None:
        """Keep `kept` (written to the bucket by this gateway) unless a change was heard since
        `generation`."""
        if self._connection is not None and not self._is_ended(key):
            self._keep(key, kept, generation)

    def forget_portal(self, portal: str) -> None:
        """Forget the sessions of `portal` (its session policy changed: they are read again under it)."""
        self.forget_where(lambda _, kept: kept is not None and kept.record.portal == portal)


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
        # Built without validating again: every value comes from a validated `SessionRecord`.
        return cls.model_construct(**{name: getattr(record, name) for name in _VIEW_FIELDS}, ends_at=record.ends_at())


_VIEW_FIELDS = tuple(set(SessionView.model_fields) - {"ends_at"})


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
    state = request.app.state
    kv = state.sessions()  # refuses at once while the bus is unreachable, kept sessions or not
    cache: SessionCache = state.session_cache
    key = session_key(token)
    kept, read = await cache.read(kv, key)
    now = datetime.now(UTC)
    while True:
        if kept is None:
            return None
        # The portal's lifetime and idle timeout as they are now, not as they were when the session opened.
        record = kept.record.under(state.session_policies.get(kept.record.portal))
        if record.is_live(now):
            break
        if read:
            return None
        # Kept here, and perhaps touched since on another gateway: the bucket has the last word.
        kept, read = await cache.read(kv, key, again=True)
    if touch and now - record.last_seen_at > TOUCH_EVERY:  # keeps the idle timer fair without a write a request
        record = record.model_copy(update={"last_seen_at": now})
        generation = cache.generation
        try:
            revision = await kv.update(key, record.model_dump_json().encode(), last=kept.revision)
            cache.touched(key, KeptSession(record, revision), generation)
        except nats.js.errors.KeyWrongLastSequenceError:
            cache.forget(key)  # touched on another gateway (or by another request) first: read it again next time
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
        key, client_ip = key.strip(), request.client.host if request.client else ""
        identity = await request.app.state.api_keys.identity(key, client_ip, lambda: rpc.call(
            operations.auth.verify_api_key, VerifyApiKey(key=key, client_ip=client_ip)))
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


async def customer(request: Request, portal: str) -> tuple[Viewer, RpcClient]:
    """`require_viewer`, called by a route itself, and the app's service client: the hottest routes take
    them so rather than as dependencies, each of which costs FastAPI a resolution per request."""
    rpc: RpcClient = request.app.state.rpc
    return await require_viewer(request, rpc, portal), rpc


async def agent(request: Request) -> tuple[Actor, RpcClient]:
    """`require_agent` and the app's service client, for a route to call itself (see `customer`)."""
    rpc: RpcClient = request.app.state.rpc
    return await _staff_actor(request, rpc, "agent"), rpc


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
