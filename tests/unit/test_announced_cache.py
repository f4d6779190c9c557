"""The rule every announced cache follows (services/runtime/announced.py), one behaviour at a time; the
replica tests (test_auth_replicas, test_conversations' settings across replicas) prove it over NATS."""

import asyncio

from services.runtime.announced import AnnouncedCache


class FakeConnection:
    def __init__(self) -> None:
        self.stats = {"reconnects": 0}
        self.published: list[tuple[str, bytes]] = []
        self.subscribed: list[str] = []

    async def subscribe(self, subject, cb):
        self.subscribed.append(subject)

    async def publish(self, subject, data):
        self.published.append((subject, data))

    async def flush(self, timeout):
        return None


def counting(values):
    reads = []

    def load(key):
        reads.append(key)
        return values.get(key)
    return reads, load


def test_a_value_is_read_once_until_a_change_names_it():
    cache = AnnouncedCache[str]("things.changed", max_age=60)
    reads, load = counting({"a": "A1", "b": "B1"})
    assert cache.get("a", lambda: load("a")) == "A1"
    assert cache.get("a", lambda: load("a")) == "A1"
    assert cache.get("b", lambda: load("b")) == "B1"
    assert reads == ["a", "b"]
    cache.forget("a")
    cache.get("a", lambda: load("a"))
    cache.get("b", lambda: load("b"))
    assert reads == ["a", "b", "a"]


def test_a_read_begun_before_a_change_is_not_kept():
    cache = AnnouncedCache[str]("things.changed", max_age=60)

    def load_while_changed():
        cache.forget("a")  # a change heard while the database read was under way
        return "stale"

    assert cache.get("a", load_while_changed) == "stale"
    assert cache.get("a", lambda: "fresh") == "fresh"


def test_nothing_found_is_read_again_unless_kept_on_purpose():
    plain = AnnouncedCache[str]("things.changed", max_age=60)
    missing = AnnouncedCache[str]("things.changed", max_age=60, keep_missing=True)
    reads, load = counting({})
    plain.get("x", lambda: load("plain"))
    plain.get("x", lambda: load("plain"))
    missing.get("x", lambda: load("missing"))
    missing.get("x", lambda: load("missing"))
    assert reads == ["plain", "plain", "missing"]


def test_an_entry_older_than_max_age_is_read_again():
    cache = AnnouncedCache[str]("things.changed", max_age=0)
    reads, load = counting({"a": "A"})
    cache.get("a", lambda: load("a"))
    cache.get("a", lambda: load("a"))
    assert reads == ["a", "a"]


def test_past_its_size_the_oldest_read_is_dropped_first():
    cache = AnnouncedCache[str]("things.changed", max_age=60, size=2)
    for key in "abc":
        cache.get(key, lambda key=key: key.upper())
    assert [key for key, _ in cache.entries()] == ["b", "c"]


def test_a_reconnect_forgets_everything_and_an_announcement_is_published():
    async def scenario():
        connection = FakeConnection()
        cache = AnnouncedCache[str]("things.changed", max_age=60)
        await cache.listen(connection)
        reads, load = counting({"a": "A"})
        cache.get("a", lambda: load("a"))
        connection.stats["reconnects"] += 1
        cache.get("a", lambda: load("a"))
        await cache.announce("a")
        cache.get("a", lambda: load("a"))
        return connection, reads

    connection, reads = asyncio.run(scenario())
    assert connection.subscribed == ["things.changed"]
    assert connection.published == [("things.changed", b"a")]
    assert reads == ["a", "a", "a"]


def test_a_change_may_name_something_other_than_the_key():
    class ByOwner(AnnouncedCache[tuple[str, str]]):
        def _drop(self, owner):
            for key, value in self.entries():
                if value is not None and value[0] == owner:
                    self._known.pop(key, None)

    cache = ByOwner("keys.changed", max_age=60)
    cache.get("hash1", lambda: ("key-1", "alice"))
    cache.get("hash2", lambda: ("key-2", "bob"))
    cache.forget("key-1")
    assert [key for key, _ in cache.entries()] == ["hash2"]


def test_async_reads_follow_the_same_rule():
    async def scenario():
        cache = AnnouncedCache[str]("things.changed", max_age=60)
        reads = []

        async def load():
            reads.append(1)
            return "A"
        await cache.aget("a", load)
        await cache.aget("a", load)
        return reads

    assert asyncio.run(scenario()) == [1]
