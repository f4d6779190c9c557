"""The one spelling of an e-mail address that every service stores and compares.

Every way an address comes in (SSO and custom sign-on tokens, e-mail access, inbound e-mail,
staff sign-in, the admin API) goes through `normalize_email`, so that look-alike spellings of one
address (`Ana@Example.com`, `Ａna@example.com` in fullwidth letters, decomposed accents, a
punycode domain) are one account, not several.
"""

import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

MAX_EMAIL_LENGTH = 320  # RFC 3696 erratum 1690: 64 for the local part, @, 255 for the domain

# The pydantic error type of an address that cannot be normalised; callers map it to `invalid_email`.
INVALID_EMAIL_ERROR = "invalid_email"


def normalize_email(raw: str) -> str:
    """`raw` as the one stored form: `str -> str`, raising `ValueError` (with the reason) when it is no address.

    Steps: Unicode NFKC over the whole address (fullwidth and other compatibility forms become
    their plain letters: UAX #15), surrounding white space dropped, syntax checked (RFC 5321/5322 with
    the internationalised forms of RFC 6531, via email-validator, no DNS lookup), the domain put
    through IDNA (UTS #46; `xn--` and Unicode spellings of one domain are one domain, kept in its
    Unicode form), and the whole address lower-cased (then NFKC again, so that the result is stable:
    `normalize_email(normalize_email(x)) == normalize_email(x)`).
    """
    if not isinstance(raw, str):
        raise ValueError("An e-mail address must be text.")
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text or len(text) > MAX_EMAIL_LENGTH:
        raise ValueError(f"An e-mail address has 3 to {MAX_EMAIL_LENGTH} characters.")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    local = unicodedata.normalize("NFKC", checked.local_part.lower())
    domain = unicodedata.normalize("NFKC", checked.domain.lower())
    return f"{local}@{domain}"


def _normalized(value: str) -> str:
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise PydanticCustomError(INVALID_EMAIL_ERROR, "Not a valid e-mail address: {reason}",
                                  {"reason": str(exc)}) from exc


EmailAddress = Annotated[str, Field(max_length=MAX_EMAIL_LENGTH, examples=["ana@example.com"]),
                         AfterValidator(_normalized)]
"""A request field holding an e-mail address, normalised by `normalize_email` on validation; a value that
cannot be normalised fails with the pydantic error type `invalid_email`."""
