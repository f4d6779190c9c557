"""auth's rules, free of I/O."""

import functools
import hashlib
import secrets

from contracts import emails
from contracts.errors import ErrorCode, ServiceError

API_KEY_PREFIX = "pk_"


# The same addresses sign in again and again; checking one costs ~40 µs (email-validator). Refusals are not kept.
_normalized = functools.lru_cache(maxsize=8192)(emails.normalize_email)


def normalize_email(raw: str) -> str:
    """One account per e-mail: `contracts.emails.normalize_email` (NFKC, case, IDNA domain), or
    `ServiceError(invalid_email)` naming what is wrong."""
    try:
        return _normalized(raw) if isinstance(raw, str) else emails.normalize_email(raw)
    except ValueError as exc:
        raise ServiceError(ErrorCode.invalid_email, f"Not a valid e-mail address: {exc}") from exc


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)
