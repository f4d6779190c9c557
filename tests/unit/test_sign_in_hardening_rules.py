"""The pure rules behind sign-in hardening (issue 11): one spelling per e-mail address, NumericDate
claims, the back-off of failure limits, `Retry-After` from the error's field, sessions under the
portal's current lifetime."""

import time
import unicodedata
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from contracts.emails import EmailAddress, normalize_email
from contracts.errors import ErrorCode, ServiceError
from contracts.sessions import SessionPolicy, SessionRecord
from services.auth import limits
from services.auth.tokens import SigningKey, verify_token
from services.gateway.errors import install_error_handlers

SAME = [
    ("ana.case@example.com", "ana.case@example.com"),
    ("Ａna.case@example.com", "ana.case@example.com"),  # fullwidth A
    ("ＡＮＡ.ＣＡＳＥ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ana.case@example.com"),  # fullwidth everything
    ("  Ana.Case@EXAMPLE.com\n", "ana.case@example.com"),
    (unicodedata.normalize("NFD", "José@example.com"), "josé@example.com"),
    (unicodedata.normalize("NFC", "JOSÉ@example.com"), "josé@example.com"),
    ("ana@XN--BCHER-KVA.example", "ana@bücher.example"),
    ("ana@BÜCHER.example", "ana@bücher.example"),
    ("ﬁona@example.com", "fiona@example.com"),  # the ligature fi
]


@pytest.mark.parametrize(("raw", "stored"), SAME)
def test_look_alike_spellings_normalise_to_one_address(raw: str, stored: str):
    assert normalize_email(raw) == stored
    assert normalize_email(stored) == stored  # stable


@pytest.mark.parametrize("bad", ["", "   ", "ana", "ana@", "@example.com", "ana@@example.com", "ana@exa mple.com",
                                 "ana@example..com", "ana@ex\u00adample.com", "ana@example.com.",
                                 "ana@" + "x" * 320 + ".com"])
def test_what_cannot_be_normalised_is_a_value_error(bad: str):
    with pytest.raises(ValueError):
        normalize_email(bad)


def test_request_fields_normalise_or_fail_with_the_invalid_email_type():
    class Body(BaseModel):
        email: EmailAddress

    assert Body(email="Ａna@Example.com").email == "ana@example.com"
    with pytest.raises(ValidationError) as failed:
        Body(email="not an address")
    assert failed.value.errors()[0]["type"] == "invalid_email"


def test_auth_refuses_an_unnormalisable_address_with_invalid_email():
    from services.auth.domain import normalize_email as auth_normalize

    assert auth_normalize("Ａna@example.com") == "ana@example.com"
    with pytest.raises(ServiceError) as refused:
        auth_normalize("ana@@example.com")
    assert refused.value.code is ErrorCode.invalid_email


@pytest.mark.parametrize("claims", [{"iat": "NOW"}, {"iat": True}, {"exp": "LATER"}, {"nbf": "NOW"},
                                    {"nbf": False}, {"exp": None}, {"iat": [1]}, {"exp": float("inf")}])
def test_numeric_dates_must_be_json_numbers(claims: dict):
    now = int(time.time())
    values = {"email": "a@example.com", "iat": now}
    values.update({k: (str(now) if v == "NOW" else str(now + 600) if v == "LATER" else v) for k, v in claims.items()})
    token = jwt.encode(values, "s" * 43, algorithm="HS256")
    with pytest.raises(ServiceError) as refused:
        verify_token(token, [SigningKey("k", "s" * 43)], max_age_seconds=900)
    assert refused.value.code is ErrorCode.invalid_claim


def test_numbers_are_still_dates():
    now = time.time()
    token = jwt.encode({"email": "a@example.com", "iat": now, "exp": int(now) + 600, "nbf": int(now) - 5},
                       "s" * 43, algorithm="HS256")
    assert verify_token(token, [SigningKey("k", "s" * 43)], max_age_seconds=900)["email"] == "a@example.com"


def test_failure_limits_double_the_wait_up_to_their_cap():
    account = limits.STAFF_FAILURES_PER_ACCOUNT
    assert [account.wait_after(n) for n in range(1, 13)] == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60]
    address = limits.STAFF_FAILURES_PER_IP
    assert address.wait_after(19) == 0 and address.wait_after(20) == 60 and address.wait_after(10_000) == 3600
    assert not account.counts_refusals and address.counts_refusals
    assert limits.CODE_FAILURES_PER_ACCOUNT.free > 5  # more than one code's five tries


async def test_retry_after_comes_from_the_error_field_not_its_words():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/limited")
    async def limited() -> None:
        raise ServiceError(ErrorCode.rate_limited, "Slow down, please.", retry_after=42)

    @app.get("/worded")
    async def worded() -> None:
        raise ServiceError(ErrorCode.rate_limited, "Too many tries; try again in 7 s.")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        answer = await client.get("/limited")
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "42"
        assert answer.json() == {"error": "rate_limited", "message": "Slow down, please."}
        worded = await client.get("/worded")
        assert worded.headers["Retry-After"] == "60"  # no field: the default; the words are not parsed


def test_an_open_session_follows_a_shorter_policy_only():
    now = datetime.now(UTC)
    record = SessionRecord(user_id="u", org_id="o", portal="demo", kind="customer", method="sso",
                           created_at=now - timedelta(hours=2), expires_at=now + timedelta(hours=22),
                           idle_timeout_seconds=7200, last_seen_at=now - timedelta(minutes=10))
    assert record.is_live(now)
    assert record.under(None) is record
    assert not record.under(SessionPolicy(lifetime_seconds=3600, idle_timeout_seconds=7200)).is_live(now)
    assert not record.under(SessionPolicy(lifetime_seconds=86400, idle_timeout_seconds=300)).is_live(now)
    longer = record.under(SessionPolicy(lifetime_seconds=30 * 86400, idle_timeout_seconds=86400))
    assert longer.expires_at == record.expires_at and longer.idle_timeout_seconds == 7200
