"""Bounces: an e-mail Portico sent came back undelivered.

A bounce never becomes an account or a conversation. It is matched to the notification it is
about, in this order: the bounce address it was sent to (VERP, `tokens.bounce_address`), the
original Message-ID it quotes or threads under, or the reply address of a conversation (then the
newest e-mail sent for that conversation, to the failed recipient when the report names one).
The notification becomes `bounced`, with the receiving server's reason, and `EmailBounced` tells
conversations, which shows agents that the customer did not get it. An unmatched bounce is
accepted and dropped (logged).
"""

from sqlmodel import Session, col, select

from contracts.events import EmailBounced
from services.notifications import tokens
from services.notifications.models import Notification
from services.notifications.reading import Bounce
from services.runtime.logging import get_logger
from services.runtime.metrics import email_outcome
from services.runtime.outbox import record_event
from services.runtime.service import Service

log = get_logger("portico.notifications")


def find_bounced(session: Session, bounce: Bounce, notification_id: str | None,
                 conversation_id: str | None) -> Notification | None:
    """The notification a bounce is about, or None (see the module's docstring for the order)."""
    if notification_id:
        found = session.get(Notification, notification_id)
        if found is not None:
            return found
    if bounce.original_message_ids:
        found = session.exec(select(Notification).where(
            col(Notification.email_message_id).in_(bounce.original_message_ids))).first()
        if found is not None:
            return found
    if conversation_id:
        statement = select(Notification).where(Notification.conversation_id == conversation_id,
                                               Notification.kind == "email", Notification.status == "sent")
        if bounce.recipient:
            statement = statement.where(Notification.recipient_email == bounce.recipient)
        return session.exec(statement.order_by(col(Notification.sent_at).desc())).first()
    return None


def mark_bounced(session: Session, notification: Notification, bounce: Bounce) -> bool:
    """Record the bounce on the notification and publish `EmailBounced`; False when it was already
    marked (mail servers sometimes send a report twice)."""
    if notification.status == "bounced":
        return False
    notification.status, notification.claimed_until = "bounced", None
    notification.last_error = bounce.reason[:500]
    session.add(notification)
    record_event(session, EmailBounced(
        notification_id=notification.id, conversation_id=notification.conversation_id,
        message_id=notification.message_id, purpose=notification.purpose,
        recipient=bounce.recipient or notification.recipient_email, reason=bounce.reason[:300]),
        org_id=notification.org_id or "", aggregate_id=notification.id, aggregate_version=notification.attempts + 1)
    return True


async def record_bounce(service: Service, bounce: Bounce, recipients: list[str], secret: bytes) -> None:
    """Match the bounce and mark its notification, in one transaction; never raises for a bounce
    that matches nothing."""
    domain = service.settings.reply_domain
    notification_id = next((n for r in recipients if (n := tokens.notification_of(secret, r, domain))), None)
    conversation_id = next((c for r in recipients if (c := tokens.conversation_of(secret, r, domain))), None)

    def apply(session: Session) -> tuple[str, str | None] | None:
        notification = find_bounced(session, bounce, notification_id, conversation_id)
        if notification is None:
            return None
        marked = mark_bounced(session, notification, bounce)
        return notification.id if marked else "", notification.conversation_id

    outcome = await service.transaction(apply)
    if outcome is None:
        log.info("bounce matched no e-mail we sent; dropped")
    elif outcome[0]:
        email_outcome("bounced")
        log.warning("e-mail bounced", notification_id=outcome[0], conversation_id=outcome[1])
    else:
        log.info("bounce for an e-mail already marked bounced")
