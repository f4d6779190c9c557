"""A cache of database reads that every replica forgets when a change is announced on core NATS.

The rule, in one place (auth's portals, secrets and API keys; conversations' portal settings): after a
change is committed, the replica that made it forgets the entry and publishes what the change names on the
cache's subject, then answers. Every replica subscribes to that subject, and messages from one connection
reach each subscriber in the order they were sent, so every replica hears of the change before any request
the answer could lead to. A replica also forgets everything when its NATS connection was re-established (a
notice may have been missed meanwhile), reads each entry again at least every `max_age` seconds (changes
made to the database by hand), and never keeps a read begun before a change it heard of (`generation`).

The cache is used from the event loop (`aget`) and from a service's worker threads (`get`) alike: one lock
guards the generation and the entries.
"""

import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg

from services.runtime.logging import get_logger

log = get_logger("portico.cache")

V = TypeVar("V")


async def publish_names(connection: Client | None, subject: str, names: Iterable[str]) -> None:
    """Publish each of `names` on `subject` (core NATS) and wait until the server has them, so that they
    reach every subscriber before anything this process sends afterwards (the answer to the change). A
    failure is logged, not raised: the other replicas then read again within their cache's `max_age`."""
    try:
        if connection is None:
            raise RuntimeError("not listening: call listen() at start")
        for name in names:
            await connection.publish(subject, name.encode())
        await connection.flush(timeout=5)
    except Exception as exc:
        log.warning("change not announced", subject=subject, error=repr(exc))


class AnnouncedCache(Generic[V]):
    """Values by key (a str), as this replica last read them; see the module's docstring.

    `subject`: the core NATS subject changes are announced on (the message: what the change names, a key
    by default, empty for "everything"). `max_age`: seconds an entry is kept at most. `size`: entries kept,
    the oldest read dropped first past it. `keep_missing`: keep a read that found nothing (None) too.
    Subclasses whose changes name something other than the key override `_drop`.
    """

    def __init__(self, subject: str, *, max_age: float, size: int = 10_000, keep_missing: bool = False) -> None:
        self.subject = subject
        self.max_age = max_age
        self.size = size
        self.keep_missing = keep_missing
        self.generation = 0  # one more at every change heard of: a read begun before it is not kept
        self._known: dict[str, tuple[V | None, float]] = {}
        self._lock = threading.Lock()
        self._connection: Client | None = None
        self._reconnects = 0

    async def listen(self, connection: Client) -> None:
        """Hear every replica's changes on `connection` (a service's `on_start`, before requests are
        answered); `announce` publishes on it too. Nothing is announced or kept on trust until the server
        has the subscription (flushed), so no change announced after this returns is missed."""
        reconnects = connection.stats["reconnects"]
        await connection.subscribe(self.subject, cb=self._heard)
        await connection.flush(timeout=5)
        self._reconnects = reconnects
        self._connection = connection

    async def _heard(self, message: Msg) -> None:
        self.forget(message.data.decode() or None)

    def forget(self, name: str | None = None) -> None:
        """Forget what a change names (None: everything) and every read still under way."""
        with self._lock:
            self.generation += 1
            if name is None:
                self._known.clear()
            else:
                self._drop(name)

    def forget_where(self, matches: Callable[[str, V | None], bool]) -> None:
        """Forget the entries for which `matches(key, value)` is true, and every read still under way."""
        with self._lock:
            self.generation += 1
            for key in [key for key, (value, _) in self._known.items() if matches(key, value)]:
                del self._known[key]

    def _drop(self, name: str) -> None:
        """Forget the entries a change naming `name` touches (called with the lock held): the key itself."""
        self._known.pop(name, None)

    def entries(self) -> list[tuple[str, V | None]]:
        """The entries kept now, as (key, value) pairs (for `_drop` overrides and inspection)."""
        return [(key, value) for key, (value, _) in self._known.items()]

    def _fresh(self, key: str) -> tuple[bool, V | None, int]:
        """(found, value, generation): a fresh entry for `key`, else the generation a new read starts at."""
        connection = self._connection
        if connection is not None and connection.stats["reconnects"] != self._reconnects:
            self._reconnects = connection.stats["reconnects"]
            self.forget()
        known = self._known.get(key)
        if known is not None and time.monotonic() - known[1] < self.max_age:
            return True, known[0], self.generation
        return False, None, self.generation

    def _keep(self, key: str, value: V | None, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            self._known.pop(key, None)
            if value is not None or self.keep_missing:
                self._known[key] = (value, time.monotonic())
                while len(self._known) > self.size:
                    del self._known[next(iter(self._known))]

    def get(self, key: str, load: Callable[[], V | None]) -> V | None:
        """The value kept for `key` if fresh, else `load()` (kept unless a change was heard meanwhile).
        For worker threads; `load` runs without the lock."""
        found, value, generation = self._fresh(key)
        if found:
            return value
        value = load()
        self._keep(key, value, generation)
        return value

    async def aget(self, key: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """`get` for the event loop, with an async `load`."""
        found, value, generation = self._fresh(key)
        if found:
            return value
        value = await load()
        self._keep(key, value, generation)
        return value

    async def announce(self, name: str) -> None:
        """After a change is committed: forget it here, and tell every replica before the change is
        answered. A failure to publish is logged: the other replicas then read again within `max_age`."""
        self.forget(name)
        await self.publish(self.subject, name)

    async def publish(self, subject: str, name: str) -> None:
        """`publish_names` `[name]` on `subject` over the connection `listen` was given."""
        await publish_names(self._connection, subject, [name])
