"""Reply addresses `reply+<conversation id>.<signature>@<reply domain>`, and bounce addresses
`bounce+<notification id>.<signature>@<reply domain>` (VERP: the envelope sender of every e-mail
Portico sends, so a bounce names the e-mail it is about).

The signature is an HMAC of the id with the reply-token secret, so an address cannot be forged or
guessed, and it is lower-case base32 so that mail servers that fold case do not break it.
"""

import base64
import hmac
import secrets
from pathlib import Path

from services.runtime.settings import Settings

PREFIX = "reply+"
BOUNCE_PREFIX = "bounce+"


def token_secret(settings: Settings) -> bytes:
    """`PORTICO_REPLY_TOKEN_SECRET`; in development a random one kept under the data dir."""
    if settings.reply_token_secret is not None:
        return settings.reply_token_secret.get_secret_value().encode()
    if settings.env != "dev":
        raise RuntimeError("Set PORTICO_REPLY_TOKEN_SECRET (at least 16 characters) to sign reply addresses.")
    path = Path(settings.data_dir) / "reply-token.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _signature(secret: bytes, conversation_id: str) -> str:
    mac = hmac.digest(secret, conversation_id.lower().encode(), "sha256")[:10]
    return base64.b32encode(mac).decode().lower().rstrip("=")


def reply_address(secret: bytes, conversation_id: str, domain: str) -> str:
    return f"{PREFIX}{conversation_id.lower()}.{_signature(secret, conversation_id)}@{domain}"


def conversation_of(secret: bytes, address: str, domain: str) -> str | None:
    """The conversation a reply address names, or None when it is not a valid reply address."""
    return _id_of(secret, address, domain, PREFIX)


def bounce_address(secret: bytes, notification_id: str, domain: str) -> str:
    """The envelope sender (RFC 5321 MAIL FROM) of notification `notification_id`'s e-mail."""
    return f"{BOUNCE_PREFIX}{notification_id.lower()}.{_signature(secret, notification_id)}@{domain}"


def notification_of(secret: bytes, address: str, domain: str) -> str | None:
    """The notification a bounce address names, or None when it is not a valid bounce address."""
    return _id_of(secret, address, domain, BOUNCE_PREFIX)


def _id_of(secret: bytes, address: str, domain: str, prefix: str) -> str | None:
    local, _, host = address.strip().lower().rpartition("@")
    if host != domain.lower() or not local.startswith(prefix):
        return None
    ident, _, signature = local[len(prefix):].partition(".")
    if len(ident) != 26 or not hmac.compare_digest(signature, _signature(secret, ident)):
        return None
    return ident.upper()
