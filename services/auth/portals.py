"""Portals: creation with their first secret and Anonymous user, settings, secrets and their rotation."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from contracts import roles
from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Actor, PortalSettings, PortalView
from contracts.sessions import MAX_SESSION_DAYS
from services.auth.accounts import get_or_create_user, portal_by_slug
from services.auth.models import Portal, PortalSecret
from services.auth.tokens import SigningKey, new_secret


def require_admin(actor: Actor, org_id: str) -> None:
    """Admins and org.admin keys of the portal's own org; anyone else sees the portal as missing."""
    if actor.org_id != org_id:
        raise ServiceError(ErrorCode.unknown_portal, "There is no such portal in your organisation.")
    if not roles.can_administer(actor.role):
        raise ServiceError(ErrorCode.forbidden, "Only admins and org.admin API keys may do this.")


def admin_portal(session: Session, actor: Actor, slug: str) -> Portal:
    portal = portal_by_slug(session, slug)
    require_admin(actor, portal.org_id)
    return portal


def create_portal(session: Session, *, org_id: str, slug: str, name: str, **settings: object) -> Portal:
    """A portal with its `kb_id`, a first secret and its own Anonymous user."""
    if session.exec(select(Portal).where(Portal.slug == slug)).first() is not None:
        raise ServiceError(ErrorCode.conflict, f"A portal '{slug}' exists already.")
    portal = Portal(id=new_id(), org_id=org_id, slug=slug, name=name, kb_id=str(uuid.uuid4()),
                    created_at=datetime.now(UTC), **settings)
    session.add(portal)
    session.flush()
    ensure_anonymous_user(session, portal)
    add_secret(session, portal)
    return portal


def ensure_anonymous_user(session: Session, portal: Portal) -> None:
    if portal.anonymous_user_id:
        return
    user, _ = get_or_create_user(session, org_id=portal.org_id, email=f"anonymous+{portal.slug}@portal.invalid",
                                 kind="anonymous", method="anonymous", portal=portal.slug,
                                 display_name="Anonymous user")
    portal.anonymous_user_id = user.id
    session.add(portal)


def add_secret(session: Session, portal: Portal) -> SigningKey:
    """A new secret, live at once."""
    key = new_secret()
    session.add(PortalSecret(kid=key.kid, portal_id=portal.id, secret=key.secret, created_at=datetime.now(UTC)))
    return key


def rotate_secret(session: Session, portal: Portal, grace: timedelta) -> tuple[SigningKey, datetime]:
    retire_at = datetime.now(UTC) + grace
    for old in live_secrets(session, portal):
        if old.retires_at is None or old.retires_at > retire_at:
            old.retires_at = retire_at
            session.add(old)
    return add_secret(session, portal), retire_at


def live_secrets(session: Session, portal: Portal, now: datetime | None = None) -> list[PortalSecret]:
    now = now or datetime.now(UTC)
    rows = session.exec(select(PortalSecret).where(
        PortalSecret.portal_id == portal.id, col(PortalSecret.revoked_at).is_(None))
        .order_by(col(PortalSecret.created_at).desc())).all()
    return [r for r in rows if r.retires_at is None or r.retires_at > now]


def signing_keys(session: Session, portal: Portal) -> list[SigningKey]:
    return [SigningKey(kid=s.kid, secret=s.secret) for s in live_secrets(session, portal)]


def apply_settings(portal: Portal, settings: PortalSettings) -> None:
    changes = settings.model_dump(exclude_unset=True)
    checks = {
        "session_lifetime_hours": (1, MAX_SESSION_DAYS * 24, "Session lifetime must be 1 to 720 hours."),
        "idle_timeout_minutes": (5, MAX_SESSION_DAYS * 24 * 60, "Idle timeout must be at least 5 minutes."),
        "sso_token_max_age_minutes": (1, 60, "SSO token age must be 1 to 60 minutes."),
    }
    for name, (low, high, message) in checks.items():
        value = changes.get(name)
        if value is not None and not low <= value <= high:
            raise ServiceError(ErrorCode.invalid_setting, f"{message} Got {value}.")
    uri = changes.get("custom_sign_on_redirect_uri")
    if uri is not None and not uri.startswith("https://") and not uri.startswith("http://localhost"):
        raise ServiceError(ErrorCode.invalid_setting, "The custom sign-on Redirect URI must be an https:// URL.")
    for name, value in changes.items():
        if value is not None:
            setattr(portal, name, value)


def portal_view(session: Session, portal: Portal) -> PortalView:
    now = datetime.now(UTC)
    secrets_state = [
        {"kid": s.kid, "created_at": s.created_at.isoformat(),
         "retires_at": s.retires_at.isoformat() if s.retires_at else None,
         "revoked": s.revoked_at is not None,
         "live": s.revoked_at is None and (s.retires_at is None or s.retires_at > now)}
        for s in session.exec(select(PortalSecret).where(PortalSecret.portal_id == portal.id)
                              .order_by(col(PortalSecret.created_at))).all()]
    settings = {name: getattr(portal, name) for name in PortalSettings.model_fields}
    return PortalView(slug=portal.slug, name=portal.name, org_id=portal.org_id, kb_id=portal.kb_id,
                      anonymous_user_id=portal.anonymous_user_id, settings=settings, secrets=secrets_state)
