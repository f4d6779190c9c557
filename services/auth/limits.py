"""Rate limits shared by every auth replica: fixed windows counted in the KV bucket `rate_limits`."""

import hashlib
import time
from dataclasses import dataclass

import nats.js.errors
from nats.js.kv import KeyValue

from contracts.errors import ErrorCode, ServiceError

RATE_BUCKET = "rate_limits"


@dataclass(frozen=True)
class Limit:
    what: str
    count: int
    window_seconds: int


CODE_REQUESTS_PER_ACCOUNT = Limit("e-mail code requests for this address", 5, 900)
CODE_REQUESTS_PER_IP = Limit("e-mail code requests from this address", 20, 900)
CODE_TRIES_PER_IP = Limit("code tries from this address", 30, 900)
TOKEN_LOGINS_PER_IP = Limit("token logins from this address", 120, 60)
TOKEN_LOGINS_PER_ACCOUNT = Limit("token logins for this account", 30, 60)


class RateLimiter:
    def __init__(self, kv: KeyValue, scale: float = 1.0) -> None:
        self._kv = kv
        self._scale = scale

    async def hit(self, limit: Limit, subject: str) -> None:
        """Count one attempt; refuse with `rate_limited` once the window's allowance is used."""
        if not subject:
            return
        now = time.time()
        window = int(now // limit.window_seconds)
        key = hashlib.sha256(f"{limit.what}|{subject}|{window}".encode()).hexdigest()
        allowed = max(1, int(limit.count * self._scale))
        for _ in range(20):  # compare-and-set; contention only among simultaneous attempts
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                try:
                    await self._kv.create(key, b"1")
                    return
                except nats.js.errors.KeyWrongLastSequenceError:
                    continue
            used = int(entry.value or b"0")
            if used >= allowed:
                retry_after = int((window + 1) * limit.window_seconds - now) + 1
                raise ServiceError(ErrorCode.rate_limited,
                                   f"Too many {limit.what}; try again in {retry_after} s.")
            try:
                await self._kv.update(key, str(used + 1).encode(), last=entry.revision)
                return
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
        raise ServiceError(ErrorCode.rate_limited, f"Too many {limit.what} at once; try again shortly.")
