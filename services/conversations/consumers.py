"""conversations' event consumers: each applies one event inside the consumer's transaction (the RPC
handlers are `customer.py`, `agent.py`, `admin.py`, `inbound.py`, `redaction.py`)."""

from sqlmodel import Session, select

from contracts.envelope import EventEnvelope
from contracts.events import EmailBounced, EmailReceived, IdentityLinked, ReporterChanged, UserRegistered
from services.conversations import store
from services.conversations.models import Conversation, ConversationViewer, Customer, InboundReceipt
from services.runtime.inbox import read_model_only
from services.runtime.logging import get_logger
from services.runtime.outbox import record_event
from services.runtime.readmodel import upsert_newer

log = get_logger("portico.conversations")


@read_model_only
def record_customer(session: Session, event: UserRegistered, envelope: EventEnvelope) -> None:
    """Keep a copy of the account; an older version never overwrites a newer one."""
    upsert_newer(session, Customer, {
        "id": event.user_id, "org_id": envelope.org_id, "email": event.email, "display_name": event.display_name,
        "kind": event.kind, "registered_at": envelope.occurred_at, "version": envelope.aggregate_version,
    })
    # Debug, not info: a line for every account would cost more than the copy it reports.
    log.debug("customer recorded", customer_id=event.user_id, org_id=envelope.org_id)


def _see(session: Session, viewer: str, conversation: Conversation, role: str) -> None:
    row = session.get(ConversationViewer, (viewer, conversation.id))
    if row is None:
        row = ConversationViewer(viewer=viewer, conversation_id=conversation.id, portal=conversation.portal, role=role,
                     status=conversation.status, channel=conversation.channel,
                     last_activity_at=conversation.last_activity_at)
    row.role = role
    session.add(row)


def link_identity(session: Session, event: IdentityLinked, envelope: EventEnvelope) -> None:
    """What the browser created as an anonymous or unverified identity now belongs to the customer who
    signed in there: they become its reporter, and the earlier identity stays on as a participant.
    A browser that only moved on to an unverified session keeps seeing what it created."""
    created = session.exec(select(ConversationViewer).where(ConversationViewer.viewer == f"s:{event.from_session}",
                                                ConversationViewer.role == "creator")).all()
    for row in created:
        conversation = session.get(Conversation, row.conversation_id, with_for_update=True)
        if conversation is None or conversation.portal != event.portal:
            continue
        if event.to_session:
            _see(session, f"s:{event.to_session}", conversation, "creator")
        if event.method == "email_unverified" or conversation.customer_id == event.to_user_id:
            continue  # not signed in yet, replayed, or already linked
        earlier = conversation.customer_id
        conversation.customer_id = event.to_user_id
        # An unverified identity is only an address someone typed: it stays on the record, but its
        # owner, who may never have used that browser, does not see the conversation.
        _see(session, earlier, conversation, "former" if event.from_method == "email_unverified" else "participant")
        _see(session, event.to_user_id, conversation, "reporter")
        store.add_event(session, conversation, author=store.Author(None, "system"), event="reporter_changed",
                        detail={"from": earlier, "to": event.to_user_id}, internal=True)
        record_event(session, ReporterChanged(
            conversation_id=conversation.id, portal=conversation.portal, from_customer_id=earlier,
            to_customer_id=event.to_user_id, reason="identity_linked"),
            org_id=conversation.org_id, aggregate_id=conversation.id, aggregate_version=conversation.version,
            causation_id=envelope.id)
        log.info("reporter changed", conversation_id=conversation.id, reason="identity_linked")


def _locked(session: Session, conversation_id: str | None) -> Conversation | None:
    """The conversation an event writes to, its row locked until commit (see `store._VISIBLE_LOCKED`)."""
    return session.get(Conversation, conversation_id, with_for_update=True) if conversation_id else None


def email_received(session: Session, event: EmailReceived, envelope: EventEnvelope) -> None:
    """An e-mail notifications accepted (the sender already checked) becomes a message on channel `email`:
    in the conversation it answers, or in a new one. The same e-mail is posted once."""
    if session.get(InboundReceipt, (envelope.org_id, "email", event.email_message_id)) is not None:
        return
    author = store.Author(event.customer_id, "customer")
    conversation = _locked(session, event.conversation_id)
    if conversation is None or conversation.org_id != envelope.org_id:
        conversation = store.create_conversation(
            session, org_id=envelope.org_id, portal=event.portal, customer_id=event.customer_id, channel="email",
            subject=event.conversation_subject, viewers=[(event.customer_id, "reporter")])
    elif conversation.status == "closed":
        config = store.portal_config(session, conversation.portal, conversation.org_id)
        conversation = store.write_to_closed(session, conversation, config, author=author, channel="email",
                                             viewers=[(event.customer_id, "reporter" if event.customer_id ==
                                                       conversation.customer_id else "participant")])
    message = store.add_message(session, conversation, author=author, body=event.body, channel="email",
                                attachments=event.attachments, in_reply_to=event.email_message_id)
    session.add(InboundReceipt(org_id=envelope.org_id, channel="email", external_message_id=event.email_message_id,
                               conversation_id=conversation.id, message_id=message.id, created_at=store.now()))
    log.info("e-mail posted", conversation_id=conversation.id, matched_by=event.matched_by)


def email_bounced(session: Session, event: EmailBounced, envelope: EventEnvelope) -> None:
    """An answer e-mailed to the customer came back: agents see on the conversation, next to the
    message, that the customer did not get it (an internal entry, never shown to the customer). The entry
    is written once per bounce event, also when the inbox was emptied by `portico replay --rebuild`
    (the receipt `bounce`/event id, as `email_received` keeps one per e-mail)."""
    if session.get(InboundReceipt, (envelope.org_id, "bounce", envelope.id)) is not None:
        return
    conversation = _locked(session, event.conversation_id)
    if conversation is None or conversation.org_id != envelope.org_id:
        return
    entry = store.add_event(session, conversation, author=store.Author(None, "system"), event="email_bounced",
                            detail={"message_id": event.message_id, "recipient": event.recipient,
                                    "reason": event.reason}, internal=True)
    session.add(InboundReceipt(org_id=envelope.org_id, channel="bounce", external_message_id=envelope.id,
                               conversation_id=conversation.id, message_id=entry.id, created_at=store.now()))
    log.info("bounce shown on the conversation", conversation_id=conversation.id)
