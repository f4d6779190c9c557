"""The signing scheme of Portico's channel webhooks, both ways (a provider's adapter posting a
customer's message in, Portico posting an answer out):

    X-Portico-Timestamp: <Unix seconds>
    X-Portico-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

A receiver accepts a timestamp at most `MAX_SKEW_SECONDS` from its clock, so a captured request
cannot be replayed later.
"""

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Portico-Timestamp"
SIGNATURE_HEADER = "X-Portico-Signature"
MAX_SKEW_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` for `body` (the raw bytes sent) at `timestamp` (Unix seconds, as sent)."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_by_any(secrets: list[str], timestamp: str, body: bytes, presented: str) -> bool:
    """Whether `presented` is the signature of `body` by one of `secrets` (constant-time compare)."""
    return any(hmac.compare_digest(sign(secret, timestamp, body), presented) for secret in secrets)
