"""conversations' event handlers: each applies one event inside the consumer's transaction."""

from sqlmodel import Session

from contracts.envelope import EventEnvelope
from contracts.events import UserRegistered
from services.conversations.models import Customer
from services.runtime.logging import get_logger

log = get_logger("portico.conversations")


def record_customer(session: Session, event: UserRegistered, envelope: EventEnvelope) -> None:
    """Keep a copy of the account; an older version never overwrites a newer one."""
    customer = session.get(Customer, event.user_id)
    if customer is not None and customer.version >= envelope.aggregate_version:
        return
    customer = customer or Customer(id=event.user_id, org_id=envelope.org_id, email=event.email, kind=event.kind,
                                    registered_at=envelope.occurred_at, version=0)
    customer.email, customer.display_name, customer.kind = event.email, event.display_name, event.kind
    customer.version = envelope.aggregate_version
    session.add(customer)
    log.info("customer recorded", customer_id=event.user_id, org_id=envelope.org_id)
