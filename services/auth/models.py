"""auth's tables. They never leave the service: other services learn of them through events."""

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel, UniqueConstraint

from services.runtime.db import UtcDateTime


class Org(SQLModel, table=True):
    __tablename__ = "orgs"

    id: str = Field(primary_key=True, max_length=26)
    slug: str = Field(unique=True, max_length=100)
    name: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)


class Portal(SQLModel, table=True):
    __tablename__ = "portals"

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(foreign_key="orgs.id", index=True, max_length=26)
    slug: str = Field(unique=True, max_length=100)
    name: str = Field(max_length=200)
    kb_id: str = Field(unique=True, max_length=36)
    email_access_enabled: bool = True
    sso_enabled: bool = False
    custom_sign_on_enabled: bool = False
    anonymous_enabled: bool = False
    custom_sign_on_redirect_uri: str | None = Field(default=None, max_length=2000)
    session_lifetime_hours: int = 24
    idle_timeout_minutes: int = 120
    sso_token_max_age_minutes: int = 15
    # Origins that may embed the chat widget, normalised (`portals.check_origins`).
    widget_origins: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    anonymous_user_id: str | None = Field(default=None, max_length=26)
    created_at: datetime = Field(sa_type=UtcDateTime)


class PortalSecret(SQLModel, table=True):
    """A portal's pre-shared HS256 secret. Several can be live at once while a rotation's grace runs."""

    __tablename__ = "portal_secrets"

    kid: str = Field(primary_key=True, max_length=40)
    portal_id: str = Field(foreign_key="portals.id", index=True, max_length=26)
    secret: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UtcDateTime)
    retires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class User(SQLModel, table=True):
    """A customer or a staff member; one account per e-mail (lower-cased) in an org."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "email", name="uq_users_org_email"),)

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(foreign_key="orgs.id", index=True, max_length=26)
    email: str = Field(max_length=320)
    display_name: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=20)  # customer | staff | anonymous
    role: str | None = Field(default=None, max_length=40)  # staff only: agent | content_manager | admin
    password_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # staff only: cannot sign in


class StaffSession(SQLModel, table=True):
    """A staff member's open session, by its key in the `sessions` bucket: a new role or a disabled
    account ends the member's sessions at once. Rows past `expires_at` are dropped at their next sign-in."""

    __tablename__ = "staff_sessions"

    session_key: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=26)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class ApiKey(SQLModel, table=True):
    """An org's API key; only its SHA-256 is stored (the key has 256 bits of randomness)."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(foreign_key="orgs.id", index=True, max_length=26)
    name: str = Field(max_length=100)
    role: str = Field(max_length=40)
    prefix: str = Field(max_length=12)
    key_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AccessCode(SQLModel, table=True):
    """A one-time e-mail access code: only its salted hash is kept; single use, 10 minutes, 5 tries."""

    __tablename__ = "access_codes"

    id: str = Field(primary_key=True, max_length=26)
    portal_id: str = Field(foreign_key="portals.id", max_length=26)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=26)
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    attempts: int = 0
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
