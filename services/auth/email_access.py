"""E-mail access: a one-time code by e-mail, then sign-in with it."""

import asyncio
import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlalchemy import bindparam, case, null
from sqlalchemy import insert as core_insert
from sqlalchemy import select as core_select
from sqlalchemy import update as core_update
from sqlmodel import Session, select

from contracts import operations
from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import (
    EmailAccessStarted,
    SendEmail,
    SessionOpened,
    StartEmailAccess,
    VerifyEmailCode,
)
from services.auth import limits
from services.auth.accounts import get_or_create_user, portal_for_method, require_method
from services.auth.caches import customers, portals
from services.auth.domain import normalize_email
from services.auth.models import AccessCode, Portal, User
from services.auth.sessions import open_session, replace_session, session_for
from services.runtime.db import Prepared, UtcDateTime, connection_of
from services.runtime.logging import get_logger
from services.runtime.rpc import REPLY_HEADERS, RequestMessage, data_body, error_body
from services.runtime.service import Service

log = get_logger("portico.auth")

CODE_LIFETIME = timedelta(minutes=10)
CODE_TRIES = 5
UNVERIFIED_SESSION = timedelta(hours=1)
# Every answer to a code request takes this long, whether the e-mail is new or known.
EMAIL_START_SECONDS = 0.25


def _code_hash(code_id: str, code: str) -> str:
    return hashlib.sha256(f"{code_id}:{code}".encode()).hexdigest()


_CODES = AccessCode.__table__  # type: ignore[attr-defined]
_INSERT_CODE = Prepared(core_insert(_CODES))
# Earlier codes of the account on the portal stop working when a new one is sent.
_RETIRE_CODES = Prepared(core_update(_CODES).where(
    _CODES.c.user_id == bindparam("of_user"), _CODES.c.portal_id == bindparam("of_portal"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now", type_=UtcDateTime)))
# The account's current code on the portal (at most one is unused: `issue_code` retires the others).
_CURRENT_CODE = Prepared(core_select(_CODES.c.id, _CODES.c.code_hash, _CODES.c.expires_at).where(
    _CODES.c.user_id == bindparam("of_user"), _CODES.c.portal_id == bindparam("of_portal"), _CODES.c.used_at.is_(None))
    .order_by(_CODES.c.created_at.desc()).limit(1))
# A try counted on a code nobody has used meanwhile (single use, on PostgreSQL too: the row's lock orders two
# tries, and the second finds it used); the right code is used up, and so is a wrong one at the last try.
_RIGHT_TRY = Prepared(core_update(_CODES).where(_CODES.c.id == bindparam("of_code"), _CODES.c.used_at.is_(None))
                      .values(attempts=_CODES.c.attempts + 1, used_at=bindparam("now", type_=UtcDateTime))
                      .returning(_CODES.c.attempts))
_WRONG_TRY = Prepared(core_update(_CODES).where(_CODES.c.id == bindparam("of_code"), _CODES.c.used_at.is_(None))
                      .values(attempts=_CODES.c.attempts + 1,
                              used_at=case((_CODES.c.attempts + 1 >= CODE_TRIES, bindparam("now", type_=UtcDateTime)),
                                           else_=null()))
                      .returning(_CODES.c.attempts))


def issue_code(session: Session, portal: Portal | str, email: str,
               known: User | None = None) -> tuple[Portal, User, str]:
    """The account (created if new, with `UserRegistered`) and a fresh code; earlier codes stop working.
    `portal`: one with e-mail access on (`require_method`), or its slug (then checked here). `known`: the
    customer's account as this replica keeps it (`caches.CustomerCache`), when it does: not read again."""
    if isinstance(portal, str):
        portal = portal_for_method(session, portal, "email")
    user = known or get_or_create_user(session, org_id=portal.org_id, email=email, kind="customer",
                                       method="email", portal=portal.slug)[0]
    now = datetime.now(UTC)
    # Prepared statements on the transaction's connection (no ORM objects, no statement compiled per request):
    # a code request writes two rows' worth.
    if session.new:
        session.flush()  # an account or portal added in this transaction comes first (the rows refer to it)
    connection = connection_of(session)
    _RETIRE_CODES.execute(connection, {"of_user": user.id, "of_portal": portal.id, "now": now}).close()
    code = f"{secrets.randbelow(10**6):06d}"
    code_id = new_id()
    _INSERT_CODE.execute(connection, {
        "id": code_id, "portal_id": portal.id, "user_id": user.id, "code_hash": _code_hash(code_id, code),
        "created_at": now, "expires_at": now + CODE_LIFETIME, "attempts": 0, "used_at": None}).close()
    return portal, user, code


async def start_email_access(service: Service, request: StartEmailAccess) -> EmailAccessStarted:
    """Start e-mail access: the account is created if the e-mail is new, and a code is e-mailed.

    The answer is the same whether or not the e-mail had an account, and so is its timing: creating
    an account (and a slow mail server) takes longer, so every answer, a refusal too, waits until the
    same moment (`EMAIL_START_SECONDS` after the request arrived). Over NATS the wait holds no request
    slot: the answer is sent at that moment by a timer (`_answer_at`), and the endpoint is free at once.
    Until the code is entered the browser holds an unverified session, which sees only what it creates.
    """
    started = time.monotonic()
    message = service.broker.context.get_local("message")
    reply_to = getattr(message, "reply_to", "")
    try:
        started_access = await _start_email_access(service, request)
    except Exception as exc:
        if not reply_to:
            await _wait_until(started + EMAIL_START_SECONDS)
            raise
        _answer_at(service, message, started + EMAIL_START_SECONDS, error_body(exc))
        raise  # counted as any refusal; the reply above is the only one sent
    if not reply_to:
        await _wait_until(started + EMAIL_START_SECONDS)
    else:
        _answer_at(service, message, started + EMAIL_START_SECONDS, data_body(started_access))
    return started_access


async def _wait_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


def _answer_at(service: Service, message: RequestMessage, moment: float, body: bytes) -> None:
    """Send `body` (a reply as `Service.answer` sends it) to the request's reply subject at `moment`
    (`time.monotonic()`), and take the reply away from the endpoint, which has none to send then."""
    reply_to = message.reply_to
    message.reply_to = ""
    connection = service.broker.connection

    async def answer() -> None:
        await _wait_until(moment)
        try:
            await connection.publish(reply_to, body, headers=REPLY_HEADERS)
        except Exception as exc:  # the caller times out, as when a replica dies mid-request
            log.warning("e-mail access answer not sent", error=repr(exc))

    pending: set[asyncio.Task[None]] = service.resources.setdefault("delayed_answers", set())
    task = asyncio.create_task(answer())
    pending.add(task)  # a task nobody refers to may be collected before it runs
    task.add_done_callback(pending.discard)


async def send_delayed_answers(service: Service) -> None:
    """`on_stop`: let the answers still waiting for their moment go out before the connection closes."""
    pending = service.resources.get("delayed_answers")
    if pending:
        await asyncio.wait(set(pending), timeout=EMAIL_START_SECONDS + 1)


async def _start_email_access(service: Service, request: StartEmailAccess) -> EmailAccessStarted:
    limiter = service.resources["limits"]
    await limiter.hit(limits.CODE_REQUESTS_PER_IP, request.client_ip)
    email = normalize_email(request.email)
    await limiter.hit(limits.CODE_REQUESTS_PER_ACCOUNT, f"{request.portal}|{email}")
    portal = await _email_portal(service, request.portal)
    known = customers(service)
    portal, user, code = await service.transaction(issue_code, portal, email, known.get(portal.org_id, email))
    known.keep(user)
    await service.client.call(operations.notifications.send_email, SendEmail(
        to=email, kind="access_code", subject=f"Your {portal.name} sign-in code",
        text=(f"Your code to sign in to {portal.name} is {code}.\n\n"
              f"It works once, for {int(CODE_LIFETIME.total_seconds() // 60)} minutes. "
              "If you did not ask for it, ignore this e-mail.\n")))
    record = session_for(user, method="email_unverified", portal=portal, lifetime=UNVERIFIED_SESSION,
                         idle=UNVERIFIED_SESSION)
    token = await open_session(service.resources["sessions"], record)
    await replace_session(service, request.replaces_session, user, portal, "email_unverified", token)
    return EmailAccessStarted(portal=portal.slug, status="pending_verification", session_token=token, session=record)


class CodeCheck(Enum):
    ok = "ok"
    wrong = "wrong"
    expired = "expired"
    exhausted = "exhausted"


async def _email_portal(service: Service, slug: str) -> Portal:
    """The portal, from this replica's portal cache; `unknown_portal`, or `method_disabled` when e-mail access
    is off there."""
    portal = (await portals(service).get(slug)).portal
    require_method(portal, "email")
    return portal


def check_code(session: Session, portal: Portal, email: str, code: str,
               known: User | None = None) -> tuple[CodeCheck, Portal, User | None]:
    """Counts the try (committed even when wrong) and uses the code up when right, or when wrong at the
    `CODE_TRIES`-th try. Each try is one conditional UPDATE of the still unused code, so of simultaneous tries
    (other replicas, PostgreSQL too) only one can use a code, and every try is counted. `known`: the account
    as this replica keeps it (`caches.CustomerCache`), when it does: not read again."""
    user = known or session.exec(select(User).where(User.org_id == portal.org_id, User.email == email)).first()
    if user is None:
        return CodeCheck.wrong, portal, None
    now = datetime.now(UTC)
    connection = connection_of(session)
    current = _CURRENT_CODE.first(connection, {"of_user": user.id, "of_portal": portal.id})
    if current is None:
        return CodeCheck.wrong, portal, None
    if current["expires_at"] <= now:
        return CodeCheck.expired, portal, None
    right = secrets.compare_digest(current["code_hash"], _code_hash(current["id"], code.strip()))
    counted = (_RIGHT_TRY if right else _WRONG_TRY).first(connection, {"of_code": current["id"], "now": now})
    if counted is None:  # used meanwhile by another try
        return CodeCheck.wrong, portal, None
    if right:
        return CodeCheck.ok, portal, user
    if counted["attempts"] >= CODE_TRIES:
        return CodeCheck.exhausted, portal, None
    return CodeCheck.wrong, portal, None


async def verify_email_code(service: Service, request: VerifyEmailCode) -> SessionOpened:
    """Sign in with the e-mailed code. Wrong codes are limited per client address (blocked) and per
    address on the portal (slowed): `limits.CODE_FAILURES_PER_IP`, `limits.CODE_FAILURES_PER_ACCOUNT`.
    Refusals: `invalid_code`; with `say_why`, `code_expired` and `code_tries_used` for those cases."""
    email = normalize_email(request.email)
    limiter = service.resources["limits"]
    guarded = (limits.CODE_FAILURES_PER_IP, request.client_ip, limits.CODE_FAILURES_PER_ACCOUNT,
               f"{request.portal}|{email}")
    counted = await limiter.guard(*guarded)
    portal = await _email_portal(service, request.portal)
    result, portal, user = await service.transaction(check_code, portal, email, request.code,
                                                     customers(service).get(portal.org_id, email))
    await limiter.settle(result is CodeCheck.ok, *guarded, counted=counted)
    if result is CodeCheck.exhausted:
        raise ServiceError(ErrorCode.code_tries_used if request.say_why else ErrorCode.invalid_code,
                           "Too many wrong tries: this code no longer works; ask for a new one.")
    if result is CodeCheck.expired and request.say_why:
        # Only an address that was sent a code has one to expire; asking for a code creates the account
        # anyway, so saying "expired" tells no more than the request itself did.
        raise ServiceError(ErrorCode.code_expired,
                           f"That code has expired (codes work for {int(CODE_LIFETIME.total_seconds() // 60)} "
                           "minutes); ask for a new one.")
    if result is not CodeCheck.ok or user is None:
        raise ServiceError(ErrorCode.invalid_code, "That code is wrong, used or expired; check it or ask for a new one.")
    record = session_for(user, method="email", portal=portal)
    token = await open_session(service.resources["sessions"], record)
    await replace_session(service, request.replaces_session, user, portal, "email", token)
    log.info("signed in", method="email", user_id=user.id, portal=portal.slug)
    return SessionOpened(session_token=token, session=record)
