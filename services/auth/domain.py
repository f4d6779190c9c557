"""auth's rules, free of I/O."""

import hashlib
import secrets

from email_validator import EmailNotValidError, validate_email

from contracts.errors import ErrorCode, ServiceError

API_KEY_PREFIX = "pk_"


def normalize_email(raw: str) -> str:
    """One account per e-mail, case-insensitive: the checked address, lower-cased."""
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ServiceError(ErrorCode.invalid_email, f"Not a valid e-mail address: {exc}") from exc
    return checked.normalized.lower()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)
