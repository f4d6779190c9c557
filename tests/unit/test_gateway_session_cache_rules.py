"""One rule of the gateway's session cache (services/gateway/auth.py `SessionCache`): a session heard ended
is refused without reading, even when a bucket replica that has not yet applied the purge still has it.
test_gateway_session_cache.py proves the whole behaviour over NATS across two gateways."""

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from contracts.sessions import SessionRecord
from services.gateway.auth import SessionCache
from tests.unit.test_announced_cache import FakeConnection


def stored() -> bytes:
    now = datetime.now(UTC)
    return SessionRecord(user_id="u1", org_id="o1", portal="demo", kind="customer", role=None,
                         email="a@example.com", display_name="A", method="sso", created_at=now,
                         expires_at=now + timedelta(hours=1), idle_timeout_seconds=3600,
                         last_seen_at=now).model_dump_json().encode()


class StaleBucket:
    """A bucket replica that never applied the purge: it still answers with the session."""

    def __init__(self) -> None:
        self.reads = 0

    async def get(self, key):
        self.reads += 1
        return SimpleNamespace(value=stored(), revision=7)


def test_an_ended_session_is_refused_even_when_a_lagging_replica_still_has_it():
    async def run():
        cache, bucket = SessionCache(max_age=10), StaleBucket()
        await cache.listen(FakeConnection())
        kept, read = await cache.read(bucket, "k1")
        assert kept is not None and read
        await cache._heard(SimpleNamespace(data=b"k1"))
        assert await cache.read(bucket, "k1") == (None, True)
        assert bucket.reads == 1  # refused without asking the bucket
        assert (await cache.read(bucket, "k2"))[0] is not None  # another session is unaffected
        cache.touched("k1", kept, cache.generation)  # a touch racing the ending keeps nothing
        assert await cache.read(bucket, "k1") == (None, True)
    asyncio.run(run())


def test_the_ended_mark_lasts_the_cache_age_only():
    async def run():
        cache, bucket = SessionCache(max_age=10), StaleBucket()
        await cache.listen(FakeConnection())
        cache.ended("k1")
        cache._ended["k1"] -= 11  # heard 11 s ago
        cache.ended("k2")  # marks are dropped past their age as new ones come
        assert list(cache._ended) == ["k2"]
        assert (await cache.read(bucket, "k1"))[0] is not None
    asyncio.run(run())
