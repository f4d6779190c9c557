"""Operators and admins: failed notifications and retrying them; channel webhooks."""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from contracts import roles
from contracts.errors import ErrorCode, ServiceError
from contracts.notifications import (
    ChannelWebhook,
    ListNotifications,
    NotificationList,
    NotificationRetried,
    NotificationView,
    RetryNotification,
    SetChannelWebhook,
)
from contracts.rpc import Actor
from services.notifications.models import ChannelWebhook as WebhookRow
from services.notifications.models import Customer, Notification
from services.runtime.service import Service


def view(notification: Notification, recipient: str | None = None) -> NotificationView:
    """`recipient`: the customer's address where the notification names the customer, not the address."""
    return NotificationView(
        id=notification.id, kind=notification.kind, status=notification.status,  # type: ignore[arg-type]
        channel=notification.channel, conversation_id=notification.conversation_id,
        cause_event_id=notification.cause_event_id, attempts=notification.attempts,
        last_error=notification.last_error, created_at=notification.created_at, sent_at=notification.sent_at,
        portal=notification.portal, purpose=notification.purpose,
        recipient=notification.recipient_email or recipient)


def addresses(session: Session, notifications: Sequence[Notification]) -> dict[str, str]:
    """E-mail addresses of the customers the notifications go to, by customer id."""
    wanted = {n.recipient_id for n in notifications if n.recipient_id and not n.recipient_email}
    if not wanted:
        return {}
    return {c.id: c.email for c in session.exec(select(Customer).where(col(Customer.id).in_(wanted))).all()}


def _operator_or_admin(actor: Actor | None) -> str | None:
    """The organisation an admin may see (None: the operator, who sees every organisation's)."""
    if actor is None:
        return None
    if not roles.can_administer(actor.role):
        raise ServiceError(ErrorCode.forbidden, "Only admins (or an org.admin API key) see notifications.")
    return actor.org_id


def list_notifications(session: Session, request: ListNotifications) -> NotificationList:
    query = select(Notification).where(Notification.status == request.status)
    org_id = _operator_or_admin(request.actor)
    if org_id is not None:
        query = query.where(Notification.org_id == org_id)
    rows = session.exec(query.order_by(col(Notification.created_at).desc()).limit(request.limit)).all()
    known = addresses(session, rows)
    return NotificationList(notifications=[view(n, known.get(n.recipient_id or "")) for n in rows])


async def retry(service: Service, request: RetryNotification) -> NotificationRetried:
    """A failed notification goes back in the queue with a fresh count of tries, and is tried at once."""
    org_id = _operator_or_admin(request.actor)

    def requeue(session: Session) -> None:
        notification = session.get(Notification, request.notification_id)
        if notification is None or (org_id is not None and notification.org_id != org_id):
            raise ServiceError(ErrorCode.not_found, "No such notification.")
        if notification.status != "failed":
            raise ServiceError(ErrorCode.conflict, f"Only failed notifications are retried; this one is "
                                                   f"{notification.status}.")
        notification.status, notification.attempts = "pending", 0
        notification.next_attempt_at, notification.claimed_until = datetime.now(UTC), None
        session.add(notification)

    await service.transaction(requeue)
    await service.resources["sender"].deliver(request.notification_id)
    def read(session: Session) -> NotificationView:
        notification = session.get(Notification, request.notification_id)
        assert notification is not None  # notifications are never deleted
        return view(notification, addresses(session, [notification]).get(notification.recipient_id or ""))

    return NotificationRetried(notification=await service.read(read))


def set_webhook(settings_env: str, session: Session, request: SetChannelWebhook) -> ChannelWebhook:
    if not roles.can_administer(request.actor.role):
        raise ServiceError(ErrorCode.forbidden, "Only admins (or an org.admin API key) set channel webhooks.")
    scheme = urlsplit(request.url).scheme
    if scheme != "https" and not (scheme == "http" and settings_env == "dev"):
        raise ServiceError(ErrorCode.invalid_setting, "url: must be https.")
    row = session.get(WebhookRow, (request.actor.org_id, request.channel))
    secret = secrets.token_urlsafe(32)
    if row is None:
        row = WebhookRow(org_id=request.actor.org_id, channel=request.channel, url=request.url, secret=secret,
                         created_at=datetime.now(UTC))
    else:
        row.url, row.secret = request.url, secret
    session.add(row)
    return ChannelWebhook(channel=row.channel, url=row.url, secret=secret)
