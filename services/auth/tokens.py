"""Verifying sign-in tokens (HS256 JWTs signed with a portal's secret). Pure: no I/O.

Stricter than the products Portico replaces: only HS256, no `crit` extensions, at most 60 s of
clock leeway, `iat` required and bounded by the method's window, `exp` honoured, `iat`/`exp`/`nbf`
JSON numbers only, a `kid` that names an unknown key refused, and every failure a stable error code.
"""

import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from contracts.errors import ErrorCode, ServiceError

LEEWAY_SECONDS = 60
SECRET_BYTES = 32  # 256 bits


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: str


def new_secret() -> SigningKey:
    return SigningKey(kid="k_" + secrets.token_hex(8), secret=secrets.token_urlsafe(SECRET_BYTES))


def _fail(code: ErrorCode, message: str) -> ServiceError:
    return ServiceError(code, message)


NUMERIC_DATE_CLAIMS = ("iat", "exp", "nbf")
# 9999-12-31T23:59:59Z: a date past it (or before year 1 BCE by as much) is no date a signing server meant.
MAX_NUMERIC_DATE = 253402300799


def check_numeric_dates(claims: dict[str, Any]) -> None:
    """`iat`, `exp` and `nbf`, where present, are JSON numbers (RFC 7519 section 2, NumericDate: seconds
    since the epoch): a string, a boolean, null, NaN, an infinity or a number past year 9999 is
    `ServiceError(invalid_claim)`."""
    for name in NUMERIC_DATE_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(ErrorCode.invalid_claim,
                        f"The token's `{name}` must be a JSON number of seconds (RFC 7519 NumericDate), "
                        f"not {type(value).__name__ if value is not None else 'null'}.")
        if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_NUMERIC_DATE:
            raise _fail(ErrorCode.invalid_claim, f"The token's `{name}` is not a date (RFC 7519 NumericDate).")


def verify_token(token: str, keys: list[SigningKey], *, max_age_seconds: int, now: float | None = None,
                 required: tuple[str, ...] = ("email", "iat")) -> dict[str, Any]:
    """The token's claims, or a `ServiceError` naming exactly what is wrong with it."""
    now = time.time() if now is None else now
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise _fail(ErrorCode.invalid_token, f"Not a JWT: {exc}") from exc
    except jwt.InvalidTokenError as exc:  # PyJWT refuses unknown `crit` entries while reading the header
        if "crit" in str(exc).lower():
            raise _fail(ErrorCode.unsupported_header,
                        "The token asks for critical header extensions; none are supported.") from exc
        raise _fail(ErrorCode.invalid_token, f"Not a valid JWT header: {exc}") from exc
    if header.get("alg") != "HS256":
        raise _fail(ErrorCode.bad_algorithm, f"Only HS256 is accepted; the token says {header.get('alg')!r}.")
    if "crit" in header:
        raise _fail(ErrorCode.unsupported_header, "The token asks for critical header extensions; none are supported.")
    if header.get("typ") not in (None, "JWT"):
        raise _fail(ErrorCode.unsupported_header, "The token's `typ` header must be JWT.")
    candidates = keys
    if "kid" in header:
        candidates = [k for k in keys if k.kid == header["kid"]]
        if not candidates:
            raise _fail(ErrorCode.unknown_key, "The token's `kid` names no current secret of this portal.")
    if not candidates:
        raise _fail(ErrorCode.bad_signature, "This portal has no current secret.")

    claims: dict[str, Any] | None = None
    for key in candidates:
        try:
            # Signature first, then the claims' types (PyJWT reads "1796065484" as a date), then their values.
            signed = jwt.decode(token, key.secret, algorithms=["HS256"], options={
                "require": list(required), "verify_aud": False, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False})
            check_numeric_dates(signed)
            claims = jwt.decode(token, key.secret, algorithms=["HS256"], leeway=LEEWAY_SECONDS,
                                options={"require": list(required), "verify_aud": False})
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise _fail(ErrorCode.token_expired, "The token has expired (`exp`); sign a new one.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _fail(ErrorCode.token_not_yet_valid,
                        "The token's `iat` or `nbf` is in the future; check the signing server's clock.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _fail(ErrorCode.missing_claim, f"The token has no `{exc.claim}` claim.") from exc
        except jwt.InvalidIssuedAtError as exc:
            raise _fail(ErrorCode.invalid_claim, "The token's `iat` must be a number of seconds.") from exc
        except jwt.InvalidTokenError as exc:
            raise _fail(ErrorCode.invalid_token, f"The token is malformed: {exc}") from exc
    if claims is None:
        raise _fail(ErrorCode.bad_signature, "The token's signature does not match this portal's secret.")

    age = now - float(claims["iat"])
    if age > max_age_seconds + LEEWAY_SECONDS:
        raise _fail(ErrorCode.token_too_old,
                    f"The token was issued {int(age)} s ago; this sign-in accepts tokens up to {max_age_seconds} s old.")
    if not isinstance(claims.get("email"), str) or not claims["email"].strip():
        raise _fail(ErrorCode.missing_claim, "The token's `email` claim must be a non-empty string.")
    for optional in ("jti", "displayName", "externalId"):
        if optional in claims and not isinstance(claims[optional], str):
            raise _fail(ErrorCode.invalid_token, f"The token's `{optional}` claim must be a string.")
    return claims
