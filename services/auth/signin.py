"""Sign-in endpoints: SSO token, anonymous, staff password, logout."""

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, delete, select

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import (
    AnonymousLogin,
    EndSession,
    SessionEnded,
    SessionOpened,
    SsoLogin,
    StaffLogin,
)
from contracts.sessions import SessionRecord, session_key
from services.auth import limits
from services.auth.accounts import get_or_create_user, require_method
from services.auth.caches import customers, portals
from services.auth.domain import normalize_email
from services.auth.models import Portal, StaffSession, User
from services.auth.sessions import (
    end_session,
    open_session,
    remember_jti,
    replace_session,
    session_for,
)
from services.auth.tokens import verify_token
from services.runtime.logging import get_logger
from services.runtime.service import Service

log = get_logger("portico.auth")

STAFF_SESSION = timedelta(hours=12)
STAFF_IDLE = timedelta(hours=2)
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked when the e-mail has no staff account, so that the answer takes as long as for one that has.
    Made on first use: an argon2 hash takes 64 MiB for a moment, which a process that never checks a
    password should not pay at start."""
    return _hasher.hash("portico-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def sso_login(service: Service, request: SsoLogin) -> SessionOpened:
    """Auto-login with a token from the company's backend; the first login of an e-mail creates the account.

    The portal and its secrets come from this replica's cache (`caches.PortalCache`: a revoked secret is
    refused at once on every replica); a returning customer's login writes nothing to the database."""
    limiter = service.resources["limits"]
    await limiter.hit(limits.TOKEN_LOGINS_PER_IP, request.client_ip)
    known = await portals(service).get(request.portal)
    portal = known.portal
    require_method(portal, "sso")
    claims = verify_token(request.token, known.signing_keys(),
                          max_age_seconds=portal.sso_token_max_age_minutes * 60)
    email = normalize_email(claims["email"])
    await limiter.hit(limits.TOKEN_LOGINS_PER_ACCOUNT, f"{portal.id}|{email}")
    if "jti" in claims:
        await remember_jti(service.resources["jti"], portal.id, claims["jti"])

    token, record = await sign_in_customer(service, portal, email, claims.get("displayName"), "sso",
                                           request.replaces_session)
    return SessionOpened(session_token=token, session=record)


async def sign_in_customer(service: Service, portal: Portal, email: str, display_name: str | None,
                           method: Literal["sso", "custom_sign_on"],
                           replaces_session: str | None) -> tuple[str, SessionRecord]:
    """A customer whose token was verified: their account (created on first login), a new session, and
    the browser's earlier anonymous or unverified identity linked to them."""
    def account(session: Session) -> User:
        user, _ = get_or_create_user(session, org_id=portal.org_id, email=email, kind="customer", method=method,
                                     portal=portal.slug, display_name=display_name, known_absent=True)
        return user

    known = customers(service)
    user = known.get(portal.org_id, email)
    if user is None:
        # One transaction, no read first: the insert writes nothing when the account exists (a returning
        # customer this replica has not seen since it started), and a first login is one statement and its event.
        user = await service.transaction(account)
        known.keep(user)
    record = session_for(user, method=method, portal=portal)
    token = await open_session(service.resources["sessions"], record)
    await replace_session(service, replaces_session, user, portal, method, token)
    log.info("signed in", method=method, user_id=user.id, portal=portal.slug)
    return token, record


async def anonymous_login(service: Service, request: AnonymousLogin) -> SessionOpened:
    """A session as the portal's Anonymous user, where the portal allows requests without login."""
    portal = (await portals(service).get(request.portal)).portal
    require_method(portal, "anonymous")

    def anonymous(session: Session) -> User | None:
        return session.get(User, portal.anonymous_user_id) if portal.anonymous_user_id else None

    user = await service.read(anonymous)
    if user is None:
        raise ServiceError(ErrorCode.internal_error, "This portal has no Anonymous user; run `portico migrate`.")
    record = session_for(user, method="anonymous", portal=portal)
    token = await open_session(service.resources["sessions"], record)
    log.info("signed in", method="anonymous", portal=portal.slug)
    return SessionOpened(session_token=token, session=record)


async def staff_login(service: Service, request: StaffLogin) -> SessionOpened:
    """E-mail and password of a staff account; the same answer and timing for every wrong pair.

    Failed sign-ins are limited per client address (blocked) and per account (slowed): see
    `limits.STAFF_FAILURES_PER_IP` and `limits.STAFF_FAILURES_PER_ACCOUNT`; `rate_limited` (429,
    `retry_after` seconds) while either must wait, whether or not the password is right.
    """
    try:
        email = normalize_email(request.email)
    except ServiceError:
        email = ""
    limiter = service.resources["limits"]
    guarded = (limits.STAFF_FAILURES_PER_IP, request.client_ip, limits.STAFF_FAILURES_PER_ACCOUNT, email)
    counted = await limiter.guard(*guarded)

    def find(session: Session) -> User | None:
        return session.exec(select(User).where(User.email == email, User.kind == "staff")).first() if email else None

    user = await service.transaction(find)

    def check() -> bool:
        try:
            return _hasher.verify(user.password_hash if user and user.password_hash else _dummy_hash(),
                                  request.password)
        except (VerificationError, InvalidHashError):
            return False

    right = await asyncio.to_thread(check) and user is not None
    await limiter.settle(right, *guarded, counted=counted)
    # A disabled account gets the same answer as a wrong password (nothing to learn from it).
    if not right or user is None or user.disabled_at is not None:
        raise ServiceError(ErrorCode.invalid_credentials, "Wrong e-mail or password.")
    record = session_for(user, method="password", portal=None, lifetime=STAFF_SESSION, idle=STAFF_IDLE)
    token = await open_session(service.resources["sessions"], record)
    # Recorded after the session exists, and checked again: an admin disabling the account or changing
    # its role meanwhile either finds this session's record or is seen here (`staff.update_staff`).
    if not await service.transaction(remember_staff_session, user.id, token, record):
        await end_session(service, token)
        raise ServiceError(ErrorCode.invalid_credentials, "Wrong e-mail or password.")
    log.info("signed in", method="password", user_id=user.id, role=user.role)
    return SessionOpened(session_token=token, session=record)


async def logout(service: Service, request: EndSession) -> SessionEnded:
    """Ends the session at once for every gateway (`end_session` announces it before this answers)."""
    ended = await end_session(service, request.session_token)
    if ended:
        log.info("signed out", user_id=ended.user_id, at=datetime.now(UTC).isoformat())
    return SessionEnded(ended=ended is not None)


def remember_staff_session(session: Session, user_id: str, token: str, record: SessionRecord) -> bool:
    """Record a staff member's new session, dropping their expired ones; False (nothing recorded) when
    the account was disabled or its role changed since the password was checked."""
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None or user.role != record.role:
        return False
    now = datetime.now(UTC)
    session.exec(delete(StaffSession).where(  # type: ignore[call-overload]
        col(StaffSession.user_id) == user_id, col(StaffSession.expires_at) <= now))
    session.add(StaffSession(session_key=session_key(token), user_id=user_id, expires_at=record.expires_at))
    return True
