"""notifications' event handlers: read models for addressing, and a notification for each agent answer."""

from datetime import UTC, datetime

from sqlmodel import Session, col, select, update

from contracts.envelope import EventEnvelope, new_id
from contracts.events import (
    ConversationCreated,
    MessagePosted,
    MessageRedacted,
    ReporterChanged,
    UserRegistered,
)
from services.notifications.models import Conversation, Customer, Notification, Participant
from services.notifications.outbound import NOTIFICATIONS, thread_message
from services.runtime.inbox import read_model_only
from services.runtime.logging import get_logger
from services.runtime.readmodel import insert_once_statement, upsert_newer

log = get_logger("portico.notifications")

PARTICIPANTS = Participant.__table__  # type: ignore[attr-defined]

# Channels whose answers reach the customer by e-mail; the others go to the org's channel webhook.
EMAIL_CHANNELS = frozenset({"portal", "email", "chat", "form"})


@read_model_only
def record_customer(session: Session, event: UserRegistered, envelope: EventEnvelope) -> None:
    upsert_newer(session, Customer, {"id": event.user_id, "org_id": envelope.org_id, "email": event.email,
                                     "display_name": event.display_name, "kind": event.kind,
                                     "version": envelope.aggregate_version})


def _participant(session: Session, conversation_id: str, customer_id: str) -> None:
    # INSERT .. ON CONFLICT DO NOTHING (the key is both columns): one statement, no read, no ORM flush.
    connection = session.connection()
    connection.execute(insert_once_statement(PARTICIPANTS, None, connection.dialect.name),
                       {"conversation_id": conversation_id, "customer_id": customer_id})


def record_conversation(session: Session, event: ConversationCreated, envelope: EventEnvelope) -> None:
    upsert_newer(session, Conversation, {
        "id": event.conversation_id, "org_id": envelope.org_id, "portal": event.portal,
        "customer_id": event.customer_id, "subject": event.conversation_subject, "version": envelope.aggregate_version})
    _participant(session, event.conversation_id, event.customer_id)


def record_reporter(session: Session, event: ReporterChanged, envelope: EventEnvelope) -> None:
    session.exec(update(Conversation).where(  # type: ignore[call-overload]
        Conversation.id == event.conversation_id, col(Conversation.version) < envelope.aggregate_version)
        .values(customer_id=event.to_customer_id, version=envelope.aggregate_version))
    _participant(session, event.conversation_id, event.to_customer_id)


def message_posted(reply_domain: str, session: Session, event: MessagePosted, envelope: EventEnvelope) -> None:
    """Keeps the conversation's addressing; an agent's public answer becomes a notification to deliver."""
    upsert_newer(session, Conversation, {
        "id": event.conversation_id, "org_id": envelope.org_id, "portal": event.portal,
        "customer_id": event.customer_id, "subject": event.conversation_subject or "",
        "version": envelope.aggregate_version})
    if event.author_kind == "customer" and event.channel == "email" and event.in_reply_to:
        # The customer's own e-mail: our answer will be threaded under it.
        thread_message(session, event.in_reply_to, event.conversation_id, envelope.occurred_at)
    if event.author_kind != "agent" or event.visibility != "public":
        return  # notes never leave; customers' own messages need no notice
    by_email = event.channel in EMAIL_CHANNELS
    now = datetime.now(UTC)
    # One notification per causing event, even when the event is replayed into an emptied inbox
    # (INSERT .. ON CONFLICT (cause_event_id) DO NOTHING, one statement built once).
    connection = session.connection()
    connection.execute(insert_once_statement(NOTIFICATIONS, "cause_event_id", connection.dialect.name), {
        "id": new_id(), "cause_event_id": envelope.id, "kind": "email" if by_email else "webhook",
        "channel": event.channel, "org_id": envelope.org_id, "portal": event.portal,
        "conversation_id": event.conversation_id, "message_id": event.message_id, "recipient_id": event.customer_id,
        "subject": event.conversation_subject or "", "body": event.body,
        "attachments": [a.model_dump() for a in event.attachments], "purpose": "reply",
        "email_message_id": f"<{envelope.id.lower()}@{reply_domain}>" if by_email else None,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now})
    log.info("notification queued", conversation_id=event.conversation_id, channel=event.channel)


def message_redacted(session: Session, event: MessageRedacted, envelope: EventEnvelope) -> None:
    """A notification not yet sent for a redacted message is never sent; its text is dropped."""
    for notification in session.exec(select(Notification).where(Notification.message_id == event.message_id)).all():
        notification.body, notification.attachments = "", []
        if notification.status == "pending":
            notification.status, notification.last_error = "cancelled", "the message was redacted"
        session.add(notification)
