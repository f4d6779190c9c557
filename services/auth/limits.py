"""Rate limits shared by every auth replica, counted in KV buckets (`rate_windows`, `rate_limits`).

Two kinds: `Limit`, a fixed window over every attempt (code requests, token logins), and
`FailureLimit`, over wrong guesses of a secret (staff passwords, e-mail codes, API keys), whose
wait doubles with every further failure. (The `limits` library has no NATS storage and no
back-off, hence this small module.)
"""

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

from contracts.errors import ErrorCode, ServiceError
from services.runtime.nats import ensure_replicas, wait_for_leader

RATE_BUCKET = "rate_limits"
# The fixed windows' counts (`RateLimiter.hit`): kept in the NATS servers' memory, not on disk (no write to
# sync per sign-in). A restart of every NATS server starts the current windows again; the wrong-guess
# counts (`FailureLimit`, waits of up to an hour) stay in `RATE_BUCKET`, on disk.
WINDOW_BUCKET = "rate_windows"
WINDOW_TTL_SECONDS = 3600  # longer than any window


async def open_window_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The `rate_windows` bucket (memory storage, `replicas` copies), created if missing."""
    config = KeyValueConfig(bucket=WINDOW_BUCKET, history=1, ttl=WINDOW_TTL_SECONDS, storage=StorageType.MEMORY,
                            description="Sign-in attempts per fixed window", replicas=replicas)
    try:
        bucket = await js.create_key_value(config)
        if replicas > 1:
            await wait_for_leader(js, f"KV_{WINDOW_BUCKET}")
        return bucket
    except BadRequestError:  # exists already (another replica made it)
        await ensure_replicas(js, f"KV_{WINDOW_BUCKET}", replicas)
        return await js.key_value(WINDOW_BUCKET)


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


@dataclass
class _Counter:
    """This replica's view of one window's counter: `used` is a lower bound of the shared count (counts only
    grow within a window), `revision` the KV revision it was read or written at (None: not known)."""

    used: int = 0
    revision: int | None = None
    ends_at: float = 0.0
    waiting: list["asyncio.Future[bool]"] = field(default_factory=list)
    flushing: bool = False
    seen: bool = False  # read or written once: no longer presumed new


class RateLimiter:
    """The limits, counted in KV buckets that every replica shares: `WINDOW_BUCKET` for the fixed windows,
    `RATE_BUCKET` for the wrong guesses.

    A fixed-window count (`hit`) costs one KV write when this replica knows the counter's last revision
    (it wrote or read it last) or the window is new, and attempts that arrive while a write is on its way
    are added together in the next one: the count stays exact across replicas (compare-and-set), with
    fewer round trips than a read and a write per attempt."""

    _PRUNE_AT = 4096  # counters kept in memory before those of past windows are dropped

    def __init__(self, kv: KeyValue, scale: float = 1.0, clock: Callable[[], float] = time.time,
                 windows: KeyValue | None = None,
                 reopen_windows: Callable[[], Awaitable[object]] | None = None) -> None:
        self._kv = kv
        self._windows = windows or kv  # where `hit` counts (`WINDOW_BUCKET`)
        # Makes the windows' bucket again: kept in memory, it is gone once every NATS server has restarted.
        self._reopen_windows = reopen_windows
        self._scale = scale
        self.clock = clock  # seconds since the epoch; tests move it forward
        self._counters: dict[str, _Counter] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    async def hit(self, limit: Limit, subject: str) -> None:
        """Count one attempt; refuse with `rate_limited` (`retry_after`, seconds) once the window's
        allowance (`limit.count` × the scale) is used. Refused attempts are not counted."""
        if not subject:
            return
        now = self.clock()
        window = int(now // limit.window_seconds)
        key = hashlib.sha256(f"{limit.what}|{subject}|{window}".encode()).hexdigest()
        allowed = max(1, int(limit.count * self._scale))
        counter = self._counters.get(key)
        if counter is None:
            if len(self._counters) >= self._PRUNE_AT:
                self._prune(now)
            counter = self._counters[key] = _Counter(ends_at=(window + 1) * limit.window_seconds)
        if counter.used < allowed:
            granted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            counter.waiting.append(granted)
            if not counter.flushing:
                counter.flushing = True
                flush = asyncio.create_task(self._flush(key, counter, allowed))
                self._flushes.add(flush)  # a task nobody refers to may be collected before it ends
                flush.add_done_callback(self._flushes.discard)
            if await granted:
                return
        retry_after = int(counter.ends_at - now) + 1
        raise ServiceError(ErrorCode.rate_limited, f"Too many {limit.what}; try again in {retry_after} s.",
                           retry_after=retry_after)

    def _prune(self, now: float) -> None:
        """Drop the counters of past windows, then the oldest ones down to half the limit (forgetting one
        costs only a read of it from the bucket when it is next counted)."""
        for key in [k for k, c in self._counters.items() if c.ends_at <= now and not c.flushing]:
            del self._counters[key]
        for key in [k for k, c in self._counters.items() if not c.flushing][:len(self._counters) - self._PRUNE_AT // 2]:
            del self._counters[key]

    async def _flush(self, key: str, counter: _Counter, allowed: int) -> None:
        """Write the waiting attempts into the counter, a batch at a time, until none wait."""
        batch: list[asyncio.Future[bool]] = []
        try:
            while counter.waiting:
                batch, counter.waiting = counter.waiting, []
                granted = await self._add(key, counter, len(batch), allowed)
                for i, future in enumerate(batch):
                    future.set_result(i < granted)
                batch = []
        except Exception as exc:  # each waiting attempt fails as a lone one would have (NATS down, ...)
            for future in batch + counter.waiting:
                if not future.done():
                    future.set_exception(exc)
            counter.waiting = []
        finally:
            counter.flushing = False

    async def _add(self, key: str, counter: _Counter, wanted: int, allowed: int) -> int:
        """Add up to `wanted` attempts to the shared count without passing `allowed`; how many were added."""
        try:
            return await self._compare_and_set(key, counter, wanted, allowed)
        except nats.js.errors.NoStreamResponseError:
            if self._reopen_windows is None:
                raise
            await self._reopen_windows()  # the NATS servers restarted: the windows start again
            counter.used, counter.revision, counter.seen = 0, None, False
            return await self._compare_and_set(key, counter, wanted, allowed)

    async def _compare_and_set(self, key: str, counter: _Counter, wanted: int, allowed: int) -> int:
        for _ in range(20):  # compare-and-set; contention only among replicas counting the same key
            if counter.revision is None:
                if not counter.seen:  # most windows are new: create first, read only once that fails
                    counter.seen = True
                    grant = min(wanted, allowed)
                    try:
                        counter.revision = await self._windows.create(key, str(grant).encode())
                        counter.used = grant
                        return grant
                    except nats.js.errors.KeyWrongLastSequenceError:
                        pass
                try:
                    entry = await self._windows.get(key)
                except nats.js.errors.KeyNotFoundError:
                    counter.seen = False
                    continue
                counter.used, counter.revision = int(entry.value or b"0"), entry.revision
            grant = min(wanted, max(0, allowed - counter.used))
            if grant == 0:
                return 0
            try:
                counter.revision = await self._windows.update(key, str(counter.used + grant).encode(),
                                                              last=counter.revision)
                counter.used += grant
                return grant
            except nats.js.errors.KeyWrongLastSequenceError:
                counter.revision = None
        raise ServiceError(ErrorCode.rate_limited, "Too many attempts at once; try again shortly.", retry_after=1)

    # -- wrong guesses of a secret -------------------------------------------------------------

    async def guard(self, per_address: FailureLimit, address: str,
                    per_account: FailureLimit | None = None, account: str = "") -> bool:
        """Before a secret is checked: `rate_limited` (with `retry_after`, seconds) while the client
        address or the account must wait. A try refused for the account counts against the address only.
        Returns whether the account had failures counted (what `settle` clears after the right secret)."""
        await self._refuse_while_waiting(per_address, address)
        if per_account is None:
            return False
        try:
            return await self._refuse_while_waiting(per_account, account)
        except ServiceError:
            await self._fail(per_address, address)
            raise

    async def settle(self, right: bool, per_address: FailureLimit, address: str,
                     per_account: FailureLimit | None = None, account: str = "", *, counted: bool = True) -> None:
        """After the check: a wrong secret counts against the address and the account; the right one
        clears the account's count (never the address's: one's own password must not buy more guesses).
        `counted`: what `guard` returned; False (the account had no count then) spares the write."""
        if right:
            if per_account is not None and account and counted:
                await self._kv.purge(self._failure_key(per_account, account))
            return
        await self._fail(per_address, address)
        if per_account is not None:
            await self._fail(per_account, account)

    def _failure_key(self, limit: FailureLimit, subject: str) -> str:
        return hashlib.sha256(f"failures|{limit.what}|{subject}".encode()).hexdigest()

    async def _refuse_while_waiting(self, limit: FailureLimit, subject: str) -> bool:
        """`rate_limited` while the subject must wait; else whether it has failures counted."""
        if not subject:
            return False
        try:
            entry = await self._kv.get(self._failure_key(limit, subject))
        except nats.js.errors.KeyNotFoundError:
            return False
        state = json.loads(entry.value or b"{}")
        now = self.clock()
        if now >= state.get("until", 0.0):
            return bool(state)
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
