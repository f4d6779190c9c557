"""The demo org that `make run` creates: org `demo`, portal `demo`, admin and an org.admin API key."""

from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlmodel import Session, select

from contracts.envelope import new_id
from contracts.sessions import SESSION_TOKEN_PREFIX
from services.auth.accounts import get_or_create_user
from services.auth.domain import hash_api_key
from services.auth.models import ApiKey, Org, Portal
from services.auth.portals import (
    add_secret,
    create_portal,
    ensure_anonymous_user,
    live_secrets,
)

DEMO_ADMIN_EMAIL = "admin@example.com"
BOOTSTRAP_KEY_NAME = "bootstrap"


def seed_demo(session: Session, *, api_key: str, admin_password: str) -> Portal:
    """Create the demo org once; on later runs bring the admin password and API key to the given values."""
    if api_key.startswith(SESSION_TOKEN_PREFIX):
        # The gateway would read it as a session token (`contracts.sessions.is_session_token`), never as a key.
        raise ValueError(f"The bootstrap API key may not start with {SESSION_TOKEN_PREFIX!r}: choose another.")
    now = datetime.now(UTC)
    org = session.exec(select(Org).where(Org.slug == "demo")).first()
    if org is None:
        org = Org(id=new_id(), slug="demo", name="Demo", created_at=now)
        session.add(org)
        session.flush()
    portal = session.exec(select(Portal).where(Portal.slug == "demo")).first()
    if portal is None:
        portal = create_portal(session, org_id=org.id, slug="demo", name="Demo support", email_access_enabled=True,
                               sso_enabled=True, custom_sign_on_enabled=True, anonymous_enabled=True)
    ensure_anonymous_user(session, portal)
    if not live_secrets(session, portal):
        add_secret(session, portal)

    hasher = PasswordHasher()
    admin, created = get_or_create_user(session, org_id=org.id, email=DEMO_ADMIN_EMAIL, kind="staff", method="seed",
                                        display_name="Demo Admin", role="admin",
                                        password_hash=hasher.hash(admin_password))
    if not created and (admin.password_hash is None or not _verifies(hasher, admin.password_hash, admin_password)):
        admin.password_hash = hasher.hash(admin_password)
        session.add(admin)

    key = session.exec(select(ApiKey).where(ApiKey.org_id == org.id, ApiKey.name == BOOTSTRAP_KEY_NAME)).first()
    if key is None:
        session.add(ApiKey(id=new_id(), org_id=org.id, name=BOOTSTRAP_KEY_NAME, role="org.admin",
                           prefix=api_key[:8], key_hash=hash_api_key(api_key), created_at=now))
    elif key.key_hash != hash_api_key(api_key):
        key.key_hash, key.prefix, key.revoked_at = hash_api_key(api_key), api_key[:8], None
        session.add(key)
    return portal


def _verifies(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except Exception:
        return False
