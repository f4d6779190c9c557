"""The fixed-window limits (`RateLimiter.hit`) count exactly across replicas, with few KV round trips."""

import asyncio

import nats.js.errors

from contracts.errors import ErrorCode, ServiceError
from services.auth.limits import Limit, RateLimiter


class _Entry:
    def __init__(self, value: bytes, revision: int) -> None:
        self.value, self.revision = value, revision


class FakeBucket:
    """A KV bucket's create/get/update with compare-and-set, each a round trip (a yield to the loop)."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[bytes, int]] = {}
        self.sequence = 0
        self.round_trips = 0

    async def _trip(self) -> None:
        self.round_trips += 1
        await asyncio.sleep(0)

    async def create(self, key: str, value: bytes) -> int:
        await self._trip()
        if key in self.entries:
            raise nats.js.errors.KeyWrongLastSequenceError()
        return self._put(key, value)

    async def get(self, key: str) -> _Entry:
        await self._trip()
        if key not in self.entries:
            raise nats.js.errors.KeyNotFoundError()
        return _Entry(*self.entries[key])

    async def update(self, key: str, value: bytes, last: int) -> int:
        await self._trip()
        if key not in self.entries or self.entries[key][1] != last:
            raise nats.js.errors.KeyWrongLastSequenceError()
        return self._put(key, value)

    def _put(self, key: str, value: bytes) -> int:
        self.sequence += 1
        self.entries[key] = (value, self.sequence)
        return self.sequence


LIMIT = Limit("token logins for this account", 30, 60)


async def _attempts(limiters: list[RateLimiter], n: int, subject: str = "portal|a@example.com") -> list[bool]:
    async def one(limiter: RateLimiter) -> bool:
        try:
            await limiter.hit(LIMIT, subject)
            return True
        except ServiceError as refused:
            assert refused.code == ErrorCode.rate_limited and refused.retry_after
            return False

    return list(await asyncio.gather(*(one(limiters[i % len(limiters)]) for i in range(n))))


def test_two_replicas_together_allow_exactly_the_limit():
    async def run() -> None:
        bucket = FakeBucket()
        replicas = [RateLimiter(bucket, clock=lambda: 1000.0), RateLimiter(bucket, clock=lambda: 1000.0)]  # type: ignore[arg-type]
        assert sum(await _attempts(replicas, 100)) == 30
        assert sum(await _attempts(replicas, 10)) == 0  # the window is used up, on both
        assert bucket.round_trips < 20  # simultaneous attempts share a write

    asyncio.run(run())


def test_one_attempt_at_a_time_costs_one_write_and_the_next_window_starts_again():
    async def run() -> None:
        now = [1000.0]
        bucket = FakeBucket()
        limiter = RateLimiter(bucket, clock=lambda: now[0])  # type: ignore[arg-type]
        for _ in range(30):
            assert await _attempts([limiter], 1) == [True]
        assert bucket.round_trips == 30
        assert await _attempts([limiter], 1) == [False]
        assert bucket.round_trips == 30  # refused from memory: counts never fall within a window
        now[0] += 60
        assert await _attempts([limiter], 1) == [True]

    asyncio.run(run())


def test_a_replica_that_forgot_its_counters_reads_them_back():
    async def run() -> None:
        bucket = FakeBucket()
        limiter = RateLimiter(bucket, clock=lambda: 1000.0)  # type: ignore[arg-type]
        limiter._PRUNE_AT = 8
        for i in range(20):
            await limiter.hit(LIMIT, f"subject {i}")
        assert len(limiter._counters) <= 8
        for _ in range(29):
            await limiter.hit(LIMIT, "subject 0")
        assert await _attempts([limiter], 1, "subject 0") == [False]

    asyncio.run(run())
