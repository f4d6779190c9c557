"""What each auth replica keeps in memory so that a sign-in or an API key check reads no database: portals
with their signing secrets, live API keys, and customer accounts.

Portals and secrets change only through auth's admin endpoints, API keys only through `revoke_api_key`
(a new key has a hash nobody was refused under; the demo seed's key, changed by `portico seed`, is read again
within the age below). Both are `services.runtime.announced.AnnouncedCache`s: after the change is committed,
the replica that made it announces what it names (`auth.portals.changed` with the portal's slug,
`auth.api_keys.changed` with the key's id) before it answers, so a revoked or retired secret, a sign-in
method turned off, or a revoked API key, is refused at once on every replica; each entry is read again at
least every `PORTAL_MAX_AGE_SECONDS` (changes made to the database by hand). API keys are kept by their
SHA-256 (what the database keeps), never the key; unknown or revoked keys are not kept.

Customer accounts never change once created (only staff accounts do: role, disabled), so they are kept as
read, up to `CUSTOMERS_KEPT` of them, least recently used dropped first; staff and Anonymous accounts are
always read from the database.
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, ServiceError
from contracts.subjects import API_KEYS_CHANGED, API_KEYS_REFUSED, PORTALS_CHANGED
from contracts.rpc import ApiKeyIdentity
from services.auth.models import ApiKey, Portal, PortalSecret, User
from services.auth.tokens import SigningKey
from services.runtime.announced import AnnouncedCache
from services.runtime.service import Service

PORTAL_MAX_AGE_SECONDS = 60.0
CUSTOMERS_KEPT = 10_000


@dataclass(frozen=True)
class KnownPortal:
    """A portal as read from the database, with its secrets that were not revoked (newest first)."""

    portal: Portal  # detached; never changed in memory
    secrets: tuple[PortalSecret, ...]

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


def _read_portal(session: Session, slug: str) -> KnownPortal | None:
    portal = session.exec(select(Portal).where(Portal.slug == slug)).first()
    if portal is None:
        return None
    secrets = session.exec(select(PortalSecret).where(
        PortalSecret.portal_id == portal.id, col(PortalSecret.revoked_at).is_(None))
        .order_by(col(PortalSecret.created_at).desc())).all()
    return KnownPortal(portal=portal, secrets=tuple(secrets))


def _read_api_key(session: Session, key_hash: str) -> KnownApiKey | None:
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
    if key is None or key.revoked_at is not None:
        return None
    return KnownApiKey(identity=ApiKeyIdentity(key_id=key.id, org_id=key.org_id, role=key.role, name=key.name,
                                               expires_at=key.expires_at),
                       expires_at=key.expires_at)


class PortalCache(AnnouncedCache[KnownPortal]):
    """Portals by slug, as this replica last read them; a change names the portal's slug."""

    def __init__(self, service: Service, max_age: float = PORTAL_MAX_AGE_SECONDS) -> None:
        super().__init__(PORTALS_CHANGED, max_age=max_age)
        self._service = service

    async def get(self, slug: str) -> KnownPortal:
        """The portal and its secrets; `ServiceError(unknown_portal)` when there is none (not remembered)."""
        known = await self.aget(slug, lambda: self._service.read(_read_portal, slug))
        if known is None:
            raise ServiceError(ErrorCode.unknown_portal, f"There is no portal '{slug}'.")
        return known


class ApiKeyCache(AnnouncedCache[KnownApiKey]):
    """Live API keys by the SHA-256 of the key (`domain.hash_api_key`, what the database keeps; the key
    itself is never kept); a change names the key's id. Unknown and revoked keys are not kept: each is
    read again, and counts as a wrong guess (`admin.verify_api_key`)."""

    def __init__(self, service: Service, max_age: float = PORTAL_MAX_AGE_SECONDS) -> None:
        super().__init__(API_KEYS_CHANGED, max_age=max_age)
        self._service = service

    def _drop(self, key_id: str) -> None:
        for key_hash, known in self.entries():
            if known is not None and known.identity.key_id == key_id:
                self._known.pop(key_hash, None)

    async def refused(self, client_ip: str) -> None:
        """After a key from `client_ip` was refused: tell every gateway (`API_KEYS_REFUSED`) before the
        refusal is answered, so the address's wait holds on all of them. A failure to publish is logged."""
        await self.publish(API_KEYS_REFUSED, client_ip)

    async def get(self, key_hash: str, now: datetime | None = None) -> ApiKeyIdentity | None:
        """Who the key with this hash speaks for, or None: unknown, revoked, or past its `expires_at`."""
        known = await self.aget(key_hash, lambda: self._service.read(_read_api_key, key_hash))
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
    await portal_cache.listen(service.broker.connection)
    await key_cache.listen(service.broker.connection)
