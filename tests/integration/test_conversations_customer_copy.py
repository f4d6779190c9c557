"""conversations' copy of an account (`consumers.record_customer`): written from auth's `UserRegistered`,
newer versions replace older ones, an older one never overwrites a newer one, and the version-0 row a
customer's own request keeps (`store.remember_customer`) gives way to the event. SQLite and PostgreSQL."""

from contracts.envelope import EventEnvelope, new_id
from contracts.events import UserRegistered
from services.conversations import consumers, store
from services.conversations.models import Customer
from services.runtime.db import make_engine, session_scope
from services.runtime.migrations import upgrade
from tests.conftest import Databases

ORG = new_id()


def _registered(user_id: str, email: str, version: int, display_name: str | None = None) -> tuple[UserRegistered,
                                                                                                  EventEnvelope]:
    event = UserRegistered(user_id=user_id, email=email, display_name=display_name, kind="customer",
                           method="sso")
    envelope = EventEnvelope.wrap(event, org_id=ORG, aggregate_id=user_id, aggregate_version=version,
                                  correlation_id="test")
    return event, envelope


def test_customer_copy_keeps_the_newest_version(databases: Databases) -> None:
    url = databases.url("conversations")
    upgrade("conversations", url)
    engine = make_engine(url)
    first, remembered = new_id(), new_id()
    try:
        with session_scope(engine) as session:
            consumers.record_customer(session, *_registered(first, "ana@example.com", 1, "Ana"))
            store.remember_customer(session, user_id=remembered, org_id=ORG, email="bo@example.com",
                                    display_name=None, kind="customer")
        with session_scope(engine) as session:
            consumers.record_customer(session, *_registered(first, "ana.new@example.com", 3, "Ana N"))
            consumers.record_customer(session, *_registered(first, "ana.old@example.com", 2, "Ana O"))  # late
            consumers.record_customer(session, *_registered(remembered, "bo@example.com", 1, "Bo"))
        with session_scope(engine) as session:
            copy = session.get(Customer, first)
            assert copy is not None
            assert (copy.email, copy.display_name, copy.version, copy.org_id, copy.kind) == (
                "ana.new@example.com", "Ana N", 3, ORG, "customer")
            assert copy.registered_at.tzinfo is not None
            known = session.get(Customer, remembered)
            assert known is not None and (known.display_name, known.version) == ("Bo", 1)
    finally:
        engine.dispose()
