"""Reply addresses: `reply+<conversation id>.<signature>@<reply domain>`.

The signature is an HMAC of the conversation id with the reply-token secret, so an address cannot be
forged or guessed, and it is lower-case base32 so that mail servers that fold case do not break it.
"""

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from services.runtime.settings import Settings

PREFIX = "reply+"


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
    mac = hmac.new(secret, conversation_id.lower().encode(), hashlib.sha256).digest()[:10]
    return base64.b32encode(mac).decode().lower().rstrip("=")


def reply_address(secret: bytes, conversation_id: str, domain: str) -> str:
    return f"{PREFIX}{conversation_id.lower()}.{_signature(secret, conversation_id)}@{domain}"


def conversation_of(secret: bytes, address: str, domain: str) -> str | None:
    """The conversation a reply address names, or None when it is not a valid reply address."""
    local, _, host = address.strip().lower().rpartition("@")
    if host != domain.lower() or not local.startswith(PREFIX):
        return None
    conversation_id, _, signature = local[len(PREFIX):].partition(".")
    if len(conversation_id) != 26 or not hmac.compare_digest(signature, _signature(secret, conversation_id)):
        return None
    return conversation_id.upper()
