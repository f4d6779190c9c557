"""Staff accounts: listing, creating, a new role, disabling; and the record of each staff member's open
sessions, so that a new role or a disabled account takes effect at once."""

from datetime import UTC, datetime

from sqlmodel import Session, col, delete, select

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import CreateStaff, ListStaff, StaffCreated, StaffList, StaffMember, StaffUpdated, UpdateStaff
from services.auth import portals
from services.auth.accounts import get_or_create_user
from services.auth.domain import new_password, normalize_email
from services.auth.models import StaffSession, User
from services.auth.sessions import announce_ended
from services.auth.signin import hash_password
from services.runtime.logging import get_logger
from services.runtime.service import Service

log = get_logger("portico.auth")


def member(user: User) -> StaffMember:
    return StaffMember(id=user.id, email=user.email, display_name=user.display_name, role=user.role,
                       disabled=user.disabled_at is not None)


def list_staff(session: Session, request: ListStaff) -> StaffList:
    portals.require_admin(request.actor, request.actor.org_id)
    users = session.exec(select(User).where(User.org_id == request.actor.org_id, User.kind == "staff")
                         .order_by(col(User.email))).all()
    return StaffList(staff=[member(u) for u in users])


def create_staff(session: Session, request: CreateStaff) -> StaffCreated:
    portals.require_admin(request.actor, request.actor.org_id)
    email = normalize_email(request.email)
    password = request.password or new_password()
    user, created = get_or_create_user(session, org_id=request.actor.org_id, email=email, kind="staff",
                                       method="admin", display_name=request.display_name, role=request.role,
                                       password_hash=hash_password(password))
    if not created:
        raise ServiceError(ErrorCode.conflict, f"{email} already has an account in this organisation.")
    return StaffCreated(member=member(user), password=None if request.password else password)


async def update_staff(service: Service, request: UpdateStaff) -> StaffUpdated:
    """A new role, or the account disabled or enabled again; the member's open sessions end at once
    (a session carries the role it was opened with). Refused with `conflict` when the org would be
    left without an enabled admin; `not_found` for an id that is not a staff member of the org."""
    def update(session: Session) -> tuple[StaffMember, list[str]]:
        portals.require_admin(request.actor, request.actor.org_id)
        user = session.get(User, request.user_id)
        if user is None or user.org_id != request.actor.org_id or user.kind != "staff":
            raise ServiceError(ErrorCode.not_found, "No such staff member in your organisation.")
        role = request.role or user.role
        disabled = user.disabled_at is not None if request.disabled is None else request.disabled
        if role == user.role and disabled == (user.disabled_at is not None):
            return member(user), []
        if user.role == "admin" and (role != "admin" or disabled) and not _other_admins(session, user):
            raise ServiceError(ErrorCode.conflict, "This is the organisation's only enabled admin; make someone "
                               "else an admin first.")
        user.role = role
        user.disabled_at = (user.disabled_at or datetime.now(UTC)) if disabled else None
        session.add(user)
        keys = list(session.exec(select(StaffSession.session_key).where(StaffSession.user_id == user.id)).all())
        session.exec(delete(StaffSession).where(col(StaffSession.user_id) == user.id))  # type: ignore[call-overload]
        return member(user), keys

    changed, keys = await service.transaction(update)
    sessions = service.resources["sessions"]
    try:
        for key in keys:
            await sessions.purge(key)
    finally:  # even when a purge failed, every gateway forgets all of them (a purged one must not live on)
        await announce_ended(service, keys)
    log.info("staff changed", user_id=changed.id, role=changed.role, disabled=changed.disabled,
             sessions_ended=len(keys))
    return StaffUpdated(member=changed, sessions_ended=len(keys))


def _other_admins(session: Session, user: User) -> bool:
    return session.exec(select(User.id).where(
        User.org_id == user.org_id, User.kind == "staff", User.role == "admin", User.id != user.id,
        col(User.disabled_at).is_(None))).first() is not None
