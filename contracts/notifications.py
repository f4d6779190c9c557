"""Request/reply messages of the notifications service (`rpc.notifications.<operation>`)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from contracts.rpc import Actor, Reply, Request
from contracts.states import NotificationStatus

WebhookChannel = Literal["messenger", "instagram", "sms", "twitter", "whatsapp"]


class NotificationView(BaseModel):
    id: str
    kind: Literal["email", "webhook"]
    status: NotificationStatus
    channel: str | None
    conversation_id: str | None
    cause_event_id: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    portal: str | None = Field(default=None, description="Portal slug.", examples=["demo"])
    purpose: str | None = Field(default=None, description="Why it is sent: reply, access_code, ...",
                                examples=["reply"])
    recipient: str | None = Field(default=None, description="The e-mail address (e-mails only).",
                                  examples=["ana@example.com"])


class ListNotifications(Request):
    """Without `actor` (the operator's command line): every organisation's. With it: an admin's own
    organisation's only (`forbidden` for other roles)."""

    actor: Actor | None = None
    status: NotificationStatus = NotificationStatus.failed
    limit: int = Field(default=100, ge=1, le=1000)


class NotificationList(Reply):
    notifications: list[NotificationView]


class RetryNotification(Request):
    """`actor` as for `ListNotifications`: another organisation's notification is `not_found` to an admin."""

    actor: Actor | None = None
    notification_id: str = Field(max_length=26)


class NotificationRetried(Reply):
    notification: NotificationView


class SetChannelWebhook(Request):
    """Where a channel's outbound messages go for an org (the company's provider adapter)."""

    actor: Actor
    channel: WebhookChannel
    url: str = Field(min_length=8, max_length=2000, description="https URL (http only in development).")


class ChannelWebhook(Reply):
    channel: str
    url: str
    secret: str | None = Field(description="Signing secret, shown when created or rotated; null otherwise.")


class ListDevMail(Request):
    """Development only: what the built-in mail catcher holds."""

    limit: int = Field(default=50, ge=1, le=500)


class DevMail(BaseModel):
    file: str
    to: str
    subject: str
    date: str
    text: str


class DevMailList(Reply):
    mails: list[DevMail]

