"""conversations' event handlers: each applies one event inside the consumer's transaction."""

from sqlmodel import Session

from contracts.envelope import EventEnvelope
from contracts.events import UserRegistered
from services.conversations.models import Customer
from services.runtime.logging import get_logger
from services.runtime.readmodel import upsert_newer

log = get_logger("portico.conversations")


def record_customer(session: Session, event: UserRegistered, envelope: EventEnvelope) -> None:
    """Keep a copy of the account; an older version never overwrites a newer one."""
    upsert_newer(session, Customer, {
        "id": event.user_id, "org_id": envelope.org_id, "email": event.email, "display_name": event.display_name,
        "kind": event.kind, "registered_at": envelope.occurred_at, "version": envelope.aggregate_version,
    })
    log.info("customer recorded", customer_id=event.user_id, org_id=envelope.org_id)
