"""Sign-in sessions, kept in the NATS KV bucket `sessions`: written by auth, read by every gateway.

The cookie carries a random token; the bucket key is its SHA-256, so reading the bucket never
yields a usable token. Deleting the key and announcing it (`contracts.subjects.SESSIONS_ENDED`: gateways
keep the sessions they read for a few seconds) logs out on every gateway replica at once.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

SESSIONS_BUCKET = "sessions"
# Each portal's current session lifetime and idle timeout (key: portal slug), written by auth when
# they change, followed live by every gateway.
SESSION_POLICIES_BUCKET = "session_policies"
SESSION_COOKIE = "portico_session"
MAX_SESSION_DAYS = 30
# A session token starts with this, an API key with `pk_` (services.auth.domain): the gateway tells a
# session sent as `Authorization: Bearer` (the chat widget's frame) from an API key by it.
SESSION_TOKEN_PREFIX = "ps_"

SignInMethod = Literal["sso", "custom_sign_on", "email", "email_unverified", "anonymous", "password"]


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_session_token(value: str) -> bool:
    """Whether `value` has the form of a session token (not an API key)."""
    return value.startswith(SESSION_TOKEN_PREFIX) and len(value) <= 200


class SessionRecord(BaseModel):
    """Who a session belongs to, how they signed in and when it ends."""

    user_id: str = Field(description="Account id (customer, staff or the portal's Anonymous user).")
    org_id: str = Field(description="Organisation.")
    portal: str | None = Field(default=None, description="Portal slug the session was opened on; none for staff.")
    kind: Literal["customer", "staff", "anonymous"] = Field(description="Kind of account.")
    role: str | None = Field(default=None, description="Staff role: agent, content_manager or admin.")
    email: str | None = Field(default=None, description="E-mail of the account, when it has one.")
    display_name: str | None = Field(default=None, description="Name to show.")
    method: SignInMethod = Field(description="How the session was opened.")
    created_at: datetime = Field(description="When the session was opened (UTC).")
    expires_at: datetime = Field(description="Absolute end of the session (UTC).")
    idle_timeout_seconds: int = Field(description="The session ends after this long without a request.", gt=0)
    last_seen_at: datetime = Field(description="Last request seen (refreshed at most once a minute).")

    def ends_at(self) -> datetime:
        return min(self.expires_at, self.last_seen_at + timedelta(seconds=self.idle_timeout_seconds))

    def under(self, policy: "SessionPolicy | None") -> "SessionRecord":
        """This session under its portal's current lifetime and idle timeout: a shorter one ends open
        sessions sooner at once; a longer one is for new sessions only (the cookie's Max-Age was set)."""
        if policy is None:
            return self
        expires_at = min(self.expires_at, self.created_at + timedelta(seconds=policy.lifetime_seconds))
        idle = min(self.idle_timeout_seconds, policy.idle_timeout_seconds)
        if expires_at == self.expires_at and idle == self.idle_timeout_seconds:
            return self
        return self.model_copy(update={"expires_at": expires_at, "idle_timeout_seconds": idle})

    def is_live(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) < self.ends_at()


class SessionPolicy(BaseModel):
    """A portal's current session lifetime and idle timeout, in the bucket `session_policies`."""

    lifetime_seconds: int = Field(gt=0, description="A session ends this long after it opened.")
    idle_timeout_seconds: int = Field(gt=0, description="A session ends after this long without a request.")
