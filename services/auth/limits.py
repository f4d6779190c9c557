"""Rate limits shared by every auth replica, counted in the KV bucket `rate_limits`.

Two kinds: `Limit`, a fixed window over every attempt (code requests, token logins), and
`FailureLimit`, over wrong guesses of a secret (staff passwords, e-mail codes, API keys), whose
wait doubles with every further failure. (The `limits` library has no NATS storage and no
back-off, hence this small module.)
"""

import hashlib
import json
import math
import time
from collections.abc import Callable
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
TOKEN_LOGINS_PER_IP = Limit("token logins from this address", 120, 60)
TOKEN_LOGINS_PER_ACCOUNT = Limit("token logins for this account", 30, 60)


@dataclass(frozen=True)
class FailureLimit:
    """Wrong guesses of a secret by one subject (a client address, or an account).

    The first `free` failures cost nothing; the failure that reaches `free` and each one after it
    make the subject wait `first_wait_seconds`, doubled for every further failure, at most
    `max_wait_seconds` (OWASP Authentication Cheat Sheet: "account lockout" with exponential
    back-off). While it waits every try is refused, the right secret too. The count is forgotten
    `forget_seconds` after the last failure. With `counts_refusals`, a try refused while waiting is
    a failure too (an address that keeps trying keeps itself blocked); without it (accounts), a
    stranger cannot make the owner's wait longer than `max_wait_seconds`.
    """

    what: str
    free: int
    first_wait_seconds: int
    max_wait_seconds: int
    forget_seconds: int
    counts_refusals: bool

    def wait_after(self, failures: int, scale: float = 1.0) -> float:
        """Seconds the subject waits after its `failures`-th failure (0 before `free` × `scale`)."""
        free = max(1, int(self.free * scale))
        if failures < free:
            return 0.0
        return float(min(self.max_wait_seconds, self.first_wait_seconds * 2 ** min(failures - free, 32)))


# A client address is blocked: 20 failures (30 for e-mail codes) free, then 1 minute, doubling to 1 hour.
STAFF_FAILURES_PER_IP = FailureLimit("failed staff sign-ins from this address", 20, 60, 3600, 3600, True)
CODE_FAILURES_PER_IP = FailureLimit("wrong e-mail codes from this address", 30, 60, 3600, 3600, True)
API_KEY_FAILURES_PER_IP = FailureLimit("wrong API keys from this address", 20, 60, 3600, 3600, True)
# An account is slowed, never locked for good: 5 failures (10 for e-mail codes) free, then 1 s doubling to 60 s.
STAFF_FAILURES_PER_ACCOUNT = FailureLimit("failed sign-ins for this account", 5, 1, 60, 900, False)
CODE_FAILURES_PER_ACCOUNT = FailureLimit("wrong e-mail codes for this address", 10, 1, 60, 900, False)


class RateLimiter:
    def __init__(self, kv: KeyValue, scale: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._scale = scale
        self.clock = clock  # seconds since the epoch; tests move it forward

    async def hit(self, limit: Limit, subject: str) -> None:
        """Count one attempt; refuse with `rate_limited` once the window's allowance is used."""
        if not subject:
            return
        now = self.clock()
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
                                   f"Too many {limit.what}; try again in {retry_after} s.", retry_after=retry_after)
            try:
                await self._kv.update(key, str(used + 1).encode(), last=entry.revision)
                return
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
        raise ServiceError(ErrorCode.rate_limited, f"Too many {limit.what} at once; try again shortly.",
                           retry_after=1)

    # -- wrong guesses of a secret -------------------------------------------------------------

    async def guard(self, per_address: FailureLimit, address: str,
                    per_account: FailureLimit | None = None, account: str = "") -> None:
        """Before a secret is checked: `rate_limited` (with `retry_after`, seconds) while the client
        address or the account must wait. A try refused for the account counts against the address only."""
        await self._refuse_while_waiting(per_address, address)
        if per_account is None:
            return
        try:
            await self._refuse_while_waiting(per_account, account)
        except ServiceError:
            await self._fail(per_address, address)
            raise

    async def settle(self, right: bool, per_address: FailureLimit, address: str,
                     per_account: FailureLimit | None = None, account: str = "") -> None:
        """After the check: a wrong secret counts against the address and the account; the right one
        clears the account's count (never the address's: one's own password must not buy more guesses)."""
        if right:
            if per_account is not None and account:
                await self._kv.purge(self._failure_key(per_account, account))
            return
        await self._fail(per_address, address)
        if per_account is not None:
            await self._fail(per_account, account)

    def _failure_key(self, limit: FailureLimit, subject: str) -> str:
        return hashlib.sha256(f"failures|{limit.what}|{subject}".encode()).hexdigest()

    async def _refuse_while_waiting(self, limit: FailureLimit, subject: str) -> None:
        if not subject:
            return
        try:
            entry = await self._kv.get(self._failure_key(limit, subject))
        except nats.js.errors.KeyNotFoundError:
            return
        state = json.loads(entry.value or b"{}")
        now = self.clock()
        if now >= state.get("until", 0.0):
            return
        if limit.counts_refusals:
            state = await self._fail(limit, subject)
        retry_after = max(1, math.ceil(state["until"] - now))
        raise ServiceError(ErrorCode.rate_limited, f"Too many {limit.what}; try again in {retry_after} s.",
                           retry_after=retry_after)

    async def _fail(self, limit: FailureLimit, subject: str) -> dict[str, float]:
        """Count one failure (compare-and-set, so simultaneous failures all count); the new state."""
        if not subject:
            return {"until": 0.0}
        key = self._failure_key(limit, subject)
        for _ in range(20):
            now = self.clock()
            try:
                entry = await self._kv.get(key)
                state, revision = json.loads(entry.value or b"{}"), entry.revision
            except nats.js.errors.KeyNotFoundError:
                state, revision = {}, None
            failures = state.get("failures", 0) if now - state.get("last", now) < limit.forget_seconds else 0
            failures += 1
            wait = limit.wait_after(failures, self._scale)
            new = {"failures": failures, "last": now,
                   "until": max(state.get("until", 0.0), now + wait) if wait else state.get("until", 0.0)}
            try:
                if revision is None:
                    await self._kv.create(key, json.dumps(new).encode())
                else:
                    await self._kv.update(key, json.dumps(new).encode(), last=revision)
                return new
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
        return {"until": self.clock() + limit.first_wait_seconds}
