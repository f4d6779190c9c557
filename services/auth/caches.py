"""What each auth replica keeps in memory so that a sign-in or an API key check reads no database: portals
with their signing secrets, live API keys, and customer accounts.

Portals and secrets change only through auth's admin endpoints, API keys only through `revoke_api_key`
(a new key has a hash nobody was refused under; the demo seed's key, changed by `portico seed`, is read again
within the age below). After the change is committed, the replica that made it forgets the entry and
publishes what it names on a core NATS subject (`AnnouncedCache.changed`: `auth.portals.changed` with the
portal's slug, `auth.api_keys.changed` with the key's id), which every replica subscribes to, before it
answers. Messages from one connection reach each subscriber in the order they were sent, so every replica
reads the change before any request the answer could lead to: a revoked or retired secret, a sign-in method
turned off, or a revoked API key, is refused at once on every replica. A replica also forgets everything when
its NATS connection was re-established (a message may have been missed meanwhile) and reads each entry again
at least every `PORTAL_MAX_AGE_SECONDS` (changes made to the database by hand). A read that started before a
change is never kept after it (`generation`). API keys are kept by their SHA-256 (what the database keeps),
never the key; unknown or revoked keys are not kept.

Customer accounts never change once created (only staff accounts do: role, disabled), so they are kept as
read, up to `CUSTOMERS_KEPT` of them, least recently used dropped first; staff and Anonymous accounts are
always read from the database.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from datetime import UTC, datetime

from nats.aio.msg import Msg
from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import ApiKeyIdentity
from services.auth.models import ApiKey, Portal, PortalSecret, User
from services.auth.tokens import SigningKey
from services.runtime.logging import get_logger
from services.runtime.service import Service

log = get_logger("portico.auth")

PORTALS_CHANGED = "auth.portals.changed"
API_KEYS_CHANGED = "auth.api_keys.changed"  # the message: the id of a key revoked or changed
PORTAL_MAX_AGE_SECONDS = 60.0
CUSTOMERS_KEPT = 10_000


@dataclass(frozen=True)
class KnownPortal:
    """A portal as read from the database, with its secrets that were not revoked (newest first)."""

    portal: Portal  # detached; never changed in memory
    secrets: tuple[PortalSecret, ...]
    read_at: float  # time.monotonic()

    def signing_keys(self, now: datetime | None = None) -> list[SigningKey]:
        """The secrets live now: not revoked, and not past their `retires_at` (a rotation's grace)."""
        now = now or datetime.now(UTC)
        return [SigningKey(kid=s.kid, secret=s.secret) for s in self.secrets
                if s.retires_at is None or s.retires_at > now]


@dataclass(frozen=True)
class KnownApiKey:
    """An API key that was live when read: who it speaks for, and until when (None: no expiry)."""

    identity: ApiKeyIdentity
    expires_at: datetime | None
    read_at: float  # time.monotonic()


def _read_portal(session: Session, slug: str) -> KnownPortal | None:
    portal = session.exec(select(Portal).where(Portal.slug == slug)).first()
    if portal is None:
        return None
    secrets = session.exec(select(PortalSecret).where(
        PortalSecret.portal_id == portal.id, col(PortalSecret.revoked_at).is_(None))
        .order_by(col(PortalSecret.created_at).desc())).all()
    return KnownPortal(portal=portal, secrets=tuple(secrets), read_at=time.monotonic())


def _read_api_key(session: Session, key_hash: str) -> KnownApiKey | None:
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
    if key is None or key.revoked_at is not None:
        return None
    return KnownApiKey(identity=ApiKeyIdentity(key_id=key.id, org_id=key.org_id, role=key.role, name=key.name),
                       expires_at=key.expires_at, read_at=time.monotonic())


class _Read(Protocol):
    read_at: float  # time.monotonic()


V = TypeVar("V", bound=_Read)


class AnnouncedCache(Generic[V]):
    """Values read from the database, kept by this replica until a change to one is announced on `subject`
    (by any replica, `changed`), the NATS connection was re-established, or `max_age` seconds have passed;
    see the module's docstring. Subclasses say what they read (`_load`) and which entries a change names
    (`_drop`)."""

    subject: str
    size = 10_000  # entries kept; the oldest read is dropped first past it

    def __init__(self, service: Service, max_age: float = PORTAL_MAX_AGE_SECONDS) -> None:
        self._service = service
        self._max_age = max_age
        self._known: dict[str, V] = {}
        self.generation = 0  # one more at every change heard of: a read begun before it is not kept
        self._reconnects = 0

    async def subscribe(self) -> None:
        """Hear every replica's changes (`on_start`, before requests are answered)."""
        connection = self._service.broker.connection
        self._reconnects = connection.stats["reconnects"]
        await connection.subscribe(self.subject, cb=self._heard)

    async def _heard(self, message: Msg) -> None:
        self.forget(message.data.decode() or None)

    def forget(self, name: str | None = None) -> None:
        """Forget what a change names (None: everything) and every read still under way."""
        self.generation += 1
        if name is None:
            self._known.clear()
        else:
            self._drop(name)

    def _drop(self, name: str) -> None:
        self._known.pop(name, None)

    async def _load(self, key: str) -> V | None:
        raise NotImplementedError

    async def _get(self, key: str) -> V | None:
        """The value kept for `key` if it is fresh, else read (and kept unless a change was heard meanwhile);
        None (not kept) when the database has none."""
        reconnects = self._service.broker.connection.stats["reconnects"]
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            self.forget()
        known = self._known.get(key)
        if known is not None and time.monotonic() - known.read_at < self._max_age:
            return known
        generation = self.generation
        known = await self._load(key)
        if generation == self.generation:
            self._known.pop(key, None)
            if known is not None:
                self._known[key] = known
                while len(self._known) > self.size:
                    del self._known[next(iter(self._known))]
        return known

    async def changed(self, name: str) -> None:
        """After a change is committed: forget it here, and tell every replica before the change is
        answered. A failure to publish is logged (the other replicas then read again within `max_age`)."""
        self.forget(name)
        try:
            connection = self._service.broker.connection
            await connection.publish(self.subject, name.encode())
            await connection.flush(timeout=5)
        except Exception as exc:
            log.warning("change not announced", subject=self.subject, error=repr(exc))


class PortalCache(AnnouncedCache[KnownPortal]):
    """Portals by slug, as this replica last read them; a change names the portal's slug."""

    subject = PORTALS_CHANGED

    async def _load(self, slug: str) -> KnownPortal | None:
        return await self._service.read(_read_portal, slug)

    async def get(self, slug: str) -> KnownPortal:
        """The portal and its secrets; `ServiceError(unknown_portal)` when there is none (not remembered)."""
        known = await self._get(slug)
        if known is None:
            raise ServiceError(ErrorCode.unknown_portal, f"There is no portal '{slug}'.")
        return known


class ApiKeyCache(AnnouncedCache[KnownApiKey]):
    """Live API keys by the SHA-256 of the key (`domain.hash_api_key`, what the database keeps; the key
    itself is never kept); a change names the key's id. Unknown and revoked keys are not kept: each is
    read again, and counts as a wrong guess (`admin.verify_api_key`)."""

    subject = API_KEYS_CHANGED

    async def _load(self, key_hash: str) -> KnownApiKey | None:
        return await self._service.read(_read_api_key, key_hash)

    def _drop(self, key_id: str) -> None:
        for key_hash in [h for h, k in self._known.items() if k.identity.key_id == key_id]:
            del self._known[key_hash]

    async def get(self, key_hash: str, now: datetime | None = None) -> ApiKeyIdentity | None:
        """Who the key with this hash speaks for, or None: unknown, revoked, or past its `expires_at`."""
        known = await self._get(key_hash)
        if known is None or (known.expires_at is not None and known.expires_at <= (now or datetime.now(UTC))):
            return None
        return known.identity


class CustomerCache:
    """Customer accounts by (org, e-mail), least recently used dropped past `size`."""

    def __init__(self, size: int = CUSTOMERS_KEPT) -> None:
        self._size = size
        self._known: OrderedDict[tuple[str, str], User] = OrderedDict()

    def get(self, org_id: str, email: str) -> User | None:
        user = self._known.get((org_id, email))
        if user is not None:
            self._known.move_to_end((org_id, email))
        return user

    def keep(self, user: User) -> None:
        """Remember a customer's account (other kinds are not kept: they can change)."""
        if user.kind != "customer":
            return
        self._known[(user.org_id, user.email)] = user
        self._known.move_to_end((user.org_id, user.email))
        while len(self._known) > self._size:
            self._known.popitem(last=False)


def portals(service: Service) -> PortalCache:
    return service.resources["portals"]


def api_keys(service: Service) -> ApiKeyCache:
    return service.resources["api_keys"]


def customers(service: Service) -> CustomerCache:
    return service.resources["customers"]


async def open_caches(service: Service) -> None:
    """`on_start`: empty caches, and the subscriptions that keep the portal and API key caches current."""
    portal_cache, key_cache = PortalCache(service), ApiKeyCache(service)
    service.resources["portals"] = portal_cache
    service.resources["api_keys"] = key_cache
    service.resources["customers"] = CustomerCache()
    await portal_cache.subscribe()
    await key_cache.subscribe()
