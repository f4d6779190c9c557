"""Finding and creating accounts; the one place `UserRegistered` is recorded."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.events import UserRegistered
from contracts.rpc import (CustomerAccount, EnsureCustomer, GetPortalInfo, ListPortals, PortalInfo, PortalList,
                           PortalName)
from services.auth.caches import portals
from services.auth.domain import normalize_email
from services.auth.models import Portal, User
from services.runtime.db import connection_of, prepared_inserts
from services.runtime.logging import get_logger
from services.runtime.outbox import record_event

if TYPE_CHECKING:
    from services.runtime.service import Service

log = get_logger("portico.auth")


def portal_by_slug(session: Session, slug: str) -> Portal:
    portal = session.exec(select(Portal).where(Portal.slug == slug)).first()
    if portal is None:
        raise ServiceError(ErrorCode.unknown_portal, f"There is no portal '{slug}'.")
    return portal


# Sign-in method -> (portal switch, what the refusal says).
_METHODS = {
    "email": ("email_access_enabled", "E-mail access is turned off for portal '{slug}'."),
    "sso": ("sso_enabled", "SSO sign-in is turned off for portal '{slug}'."),
    "anonymous": ("anonymous_enabled", "Anonymous sign-in is turned off for portal '{slug}'."),
    "custom_sign_on": ("custom_sign_on_enabled", "Custom sign-on is not set up for portal '{slug}'."),
}


def portal_for_method(session: Session, slug: str, method: str) -> Portal:
    """The portal, or `unknown_portal`; `method_disabled` when that sign-in method is off there."""
    portal = portal_by_slug(session, slug)
    require_method(portal, method)
    return portal


def require_method(portal: Portal, method: str) -> None:
    """`ServiceError(method_disabled)` when that sign-in method (a key of `_METHODS`) is off on the portal."""
    if not _enabled(portal, method):
        raise ServiceError(ErrorCode.method_disabled, _METHODS[method][1].format(slug=portal.slug))


def _enabled(portal: Portal, method: str) -> bool:
    switch = _METHODS[method][0]
    return bool(getattr(portal, switch)) and (method != "custom_sign_on" or bool(portal.custom_sign_on_redirect_uri))


def get_or_create_user(session: Session, *, org_id: str, email: str, kind: str, method: str,
                       portal: str | None = None, display_name: str | None = None,
                       role: str | None = None, password_hash: str | None = None,
                       known_absent: bool = False) -> tuple[User, bool]:
    """The account for `email` in the org, created (with `UserRegistered`) when there is none.

    Idempotent under concurrency: a second, racing first login finds the account the first one
    created and reuses it, so there is one account and one event, and neither caller fails.
    `known_absent`: the caller has just read that there is none, so the insert is tried at once.
    A created account is returned detached (written with one Core statement, no ORM flush).
    """
    if not known_absent:
        existing = find_user(session, org_id, email)
        if existing is not None:
            return existing, False
    values = {"id": new_id(), "org_id": org_id, "email": email, "display_name": display_name, "kind": kind,
              "role": role, "password_hash": password_hash, "created_at": datetime.now(UTC), "disabled_at": None}
    if session.new:
        session.flush()  # the org or portal this account belongs to may be new in this transaction
    connection = connection_of(session)
    # INSERT .. ON CONFLICT (org_id, email) DO NOTHING RETURNING id: a racing first login's account (committed
    # meanwhile) makes it write nothing, without a savepoint or an error to recover from. Prepared: compiled
    # once, run on the transaction's DBAPI cursor.
    if _INSERT_USER[connection.dialect.name].first(connection, values) is None:
        return session.exec(select(User).where(User.org_id == org_id, User.email == email)).one(), False
    record_event(session, UserRegistered(
        user_id=values["id"], email=email, display_name=display_name, kind=kind,  # type: ignore[arg-type]
        method=method, portal=portal),  # type: ignore[arg-type]
        org_id=org_id, aggregate_id=values["id"], aggregate_version=1)  # type: ignore[arg-type]
    log.info("account created", user_id=values["id"], org_id=org_id, kind=kind, method=method)
    return User(**values), True


_USERS = User.__table__  # type: ignore[attr-defined]
_INSERT_USER = prepared_inserts(_USERS, lambda insert: insert.on_conflict_do_nothing(
    index_elements=[_USERS.c.org_id, _USERS.c.email]).returning(_USERS.c.id))


def ensure_customer(session: Session, request: EnsureCustomer) -> CustomerAccount:
    """The customer behind a message from another channel; created on first contact."""
    portal = portal_by_slug(session, request.portal)
    if portal.org_id != request.org_id:
        raise ServiceError(ErrorCode.unknown_portal, f"There is no portal '{request.portal}'.")
    email = normalize_email(request.email)
    user, created = get_or_create_user(session, org_id=portal.org_id, email=email, kind="customer", method="channel",
                                       portal=portal.slug, display_name=request.display_name)
    if user.kind != "customer":
        raise ServiceError(ErrorCode.invalid_email, "That address belongs to a staff account, not a customer.")
    return CustomerAccount(user_id=user.id, email=user.email, display_name=user.display_name, created=created)


def find_user(session: Session, org_id: str, email: str) -> User | None:
    """The account for `email` (normalised) in the org, or None."""
    return session.exec(select(User).where(User.org_id == org_id, User.email == email)).first()


async def portal_info(service: "Service", request: GetPortalInfo) -> PortalInfo:
    """A portal's public facts (name, kb_id, sign-in methods, widget origins), from this replica's portal cache."""
    portal = (await portals(service).get(request.portal)).portal
    methods = [m for m in _METHODS if _enabled(portal, m)]
    return PortalInfo(slug=portal.slug, name=portal.name, org_id=portal.org_id, kb_id=portal.kb_id,
                      sign_in_methods=methods, widget_origins=list(portal.widget_origins or []))


def list_portals(session: Session, request: ListPortals) -> PortalList:
    """The actor's organisation's portals, by name (for the staff console's portal choosers)."""
    portals = session.exec(select(Portal).where(Portal.org_id == request.actor.org_id)
                           .order_by(Portal.name, Portal.slug)).all()  # type: ignore[arg-type]
    return PortalList(portals=[PortalName(slug=p.slug, name=p.name) for p in portals])
