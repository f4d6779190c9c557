"""Operators and admins: failed notifications and retrying them; channel webhooks."""

import secrets
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
from services.notifications.models import ChannelWebhook as WebhookRow
from services.notifications.models import Notification
from services.runtime.service import Service


def view(notification: Notification) -> NotificationView:
    return NotificationView(
        id=notification.id, kind=notification.kind, status=notification.status,  # type: ignore[arg-type]
        channel=notification.channel, conversation_id=notification.conversation_id,
        cause_event_id=notification.cause_event_id, attempts=notification.attempts,
        last_error=notification.last_error, created_at=notification.created_at, sent_at=notification.sent_at)


def list_notifications(session: Session, request: ListNotifications) -> NotificationList:
    rows = session.exec(select(Notification).where(Notification.status == request.status)
                        .order_by(col(Notification.created_at).desc()).limit(request.limit)).all()
    return NotificationList(notifications=[view(n) for n in rows])


async def retry(service: Service, request: RetryNotification) -> NotificationRetried:
    """A failed notification goes back in the queue with a fresh count of tries, and is tried at once."""
    def requeue(session: Session) -> None:
        notification = session.get(Notification, request.notification_id)
        if notification is None:
            raise ServiceError(ErrorCode.not_found, "No such notification.")
        if notification.status != "failed":
            raise ServiceError(ErrorCode.conflict, f"Only failed notifications are retried; this one is "
                                                   f"{notification.status}.")
        notification.status, notification.attempts = "pending", 0
        notification.next_attempt_at, notification.claimed_until = datetime.now(UTC), None
        session.add(notification)

    await service.transaction(requeue)
    await service.resources["sender"].deliver(request.notification_id)
    notification = await service.read(lambda session: session.get(Notification, request.notification_id))
    return NotificationRetried(notification=view(notification))


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
