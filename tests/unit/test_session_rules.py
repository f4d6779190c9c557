"""Session records end at their lifetime or idle timeout; cookies are Secure outside development."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from fastapi import Response

from contracts.sessions import SessionRecord
from services.gateway.auth import cookie_secure, set_session_cookie


def record(**changes: object) -> SessionRecord:
    now = datetime.now(UTC)
    values = dict(user_id="u", org_id="o", portal="demo", kind="customer", method="sso", created_at=now,
                  expires_at=now + timedelta(hours=24), idle_timeout_seconds=7200, last_seen_at=now)
    values.update(changes)
    return SessionRecord(**values)  # type: ignore[arg-type]


def test_a_session_ends_at_its_lifetime_or_after_idling():
    now = datetime.now(UTC)
    assert record().is_live(now)
    assert not record(expires_at=now - timedelta(seconds=1)).is_live(now)
    idle = record(last_seen_at=now - timedelta(hours=3))
    assert not idle.is_live(now) and idle.ends_at() == idle.last_seen_at + timedelta(hours=2)


def test_cookies_are_secure_except_in_development():
    def request(env: str) -> SimpleNamespace:
        return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=SimpleNamespace(env=env))))

    assert cookie_secure(request("prod")) and cookie_secure(request("test"))  # type: ignore[arg-type]
    assert not cookie_secure(request("dev"))  # type: ignore[arg-type]
    response = Response()
    set_session_cookie(response, "token", record(), secure=True)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "secure" in header and "samesite=lax" in header and "max-age=86400" in header
