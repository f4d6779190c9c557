"""Portals: creation with their first secret and Anonymous user, settings, secrets and their rotation."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

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
    """Check every changed setting, then apply them all; a refusal (`invalid_setting`, its message
    starting with the field's name and a colon) changes nothing."""
    changes = settings.model_dump(exclude_unset=True)
    checks = {
        "session_lifetime_hours": (1, MAX_SESSION_DAYS * 24, "Session lifetime must be 1 to 720 hours."),
        "idle_timeout_minutes": (5, MAX_SESSION_DAYS * 24 * 60, "Idle timeout must be at least 5 minutes."),
        "sso_token_max_age_minutes": (1, 60, "SSO token age must be 1 to 60 minutes."),
    }
    for name, (low, high, message) in checks.items():
        value = changes.get(name)
        if value is not None and not low <= value <= high:
            raise ServiceError(ErrorCode.invalid_setting, f"{name}: {message} Got {value}.")
    uri = changes.get("custom_sign_on_redirect_uri")
    if uri is not None and not _redirect_uri_allowed(uri):
        raise ServiceError(ErrorCode.invalid_setting,
                           "custom_sign_on_redirect_uri: The custom sign-on Redirect URI must be an https:// URL.")
    if changes.get("widget_origins") is not None:
        changes["widget_origins"] = check_origins(changes["widget_origins"])
    for name, value in changes.items():
        if value is not None:
            setattr(portal, name, value)


MAX_WIDGET_ORIGINS = 50


def _redirect_uri_allowed(uri: str) -> bool:
    """An https URL with a host, or http on this machine only (`localhost`, `127.0.0.1`) for development:
    the host is compared whole, so `http://localhost.evil.example` is refused."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return False
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS
_LOCAL_HOSTS = ("localhost", "127.0.0.1")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_origins(values: list[str]) -> list[str]:
    """The widget's allowed origins, normalised (lower case, no default port, each once, in order).

    An origin is `scheme://host[:port]` as a browser sends it in `Origin`: https, or plain http only
    for `localhost` and `127.0.0.1` (development); no path, query, user name or wildcard. Raises
    `invalid_setting` (`widget_origins: ...`) naming the first origin refused and why."""
    if len(values) > MAX_WIDGET_ORIGINS:
        raise ServiceError(ErrorCode.invalid_setting,
                           f"widget_origins: At most {MAX_WIDGET_ORIGINS} origins; got {len(values)}.")
    kept: list[str] = []
    for value in values:
        origin = _origin(value.strip())
        if origin not in kept:
            kept.append(origin)
    return kept


def _origin(value: str) -> str:
    def refuse(why: str) -> ServiceError:
        shown = value if len(value) <= 200 else value[:200] + "…"
        return ServiceError(ErrorCode.invalid_setting, f"widget_origins: '{shown}' {why}")

    example = "Write it as scheme://host[:port], like https://shop.example.com."
    if not value or len(value) > 300 or any(ord(c) < 33 or c == "\\" for c in value):
        raise refuse(f"is not an origin. {example}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise refuse(f"has a port that is not a number from 1 to 65535. {example}") from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("https", "http") or not parts.netloc:
        raise refuse(f"is not an origin. {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        raise refuse(f"has a path, query or fragment; an origin has none. {example}")
    if parts.username is not None or parts.password is not None:
        raise refuse(f"has a user name; an origin has none. {example}")
    if "*" in host:
        raise refuse("has a wildcard; list each site's origin on its own.")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise refuse(f"has a host name that is not valid. {example}") from exc
    if not host or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise refuse(f"has a host name that is not valid. {example}")
    if scheme == "http" and host not in _LOCAL_HOSTS:
        raise refuse("uses http; use https (http is allowed only for localhost and 127.0.0.1).")
    if port == 0:
        raise refuse(f"has a port that is not a number from 1 to 65535. {example}")
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


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
