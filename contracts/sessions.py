"""Sign-in sessions, kept in the NATS KV bucket `sessions`: written by auth, read by every gateway.

The cookie carries a random token; the bucket key is its SHA-256, so reading the bucket never
yields a usable token. Deleting the key logs out on every gateway replica at once.
"""

import hashlib
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

SESSIONS_BUCKET = "sessions"
SESSION_COOKIE = "portico_session"
MAX_SESSION_DAYS = 30

SignInMethod = Literal["sso", "custom_sign_on", "email", "email_unverified", "anonymous", "password"]


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        from datetime import timedelta

        return min(self.expires_at, self.last_seen_at + timedelta(seconds=self.idle_timeout_seconds))

    def is_live(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) < self.ends_at()
