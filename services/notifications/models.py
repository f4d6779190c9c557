"""notifications' tables: the read models it needs to address mail, and the notifications themselves."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from services.runtime.db import UtcDateTime


class Customer(SQLModel, table=True):
    """Accounts (from auth's `UserRegistered`): where a customer's e-mail goes."""

    __tablename__ = "customer_addresses"

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(max_length=26)
    email: str = Field(max_length=320, index=True)
    display_name: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=20)
    version: int


class Conversation(SQLModel, table=True):
    """Conversations (from conversations' events): portal, reporter and subject of each."""

    __tablename__ = "conversation_addresses"

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(max_length=26)
    portal: str = Field(max_length=100)
    customer_id: str = Field(max_length=26)
    subject: str = Field(max_length=2000)
    version: int


class Participant(SQLModel, table=True):
    """Who may answer a conversation by e-mail: its reporter and earlier identities of the reporter."""

    __tablename__ = "participants"

    conversation_id: str = Field(primary_key=True, max_length=26)
    customer_id: str = Field(primary_key=True, max_length=26)


class Notification(SQLModel, table=True):
    """One e-mail or webhook to deliver. Created in the same transaction as the inbox row of the
    event that asks for it, so a redelivered or replayed event finds it and creates no second one."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=26)
    cause_event_id: str = Field(max_length=26, unique=True)
    kind: str = Field(max_length=10)  # email | webhook
    channel: str | None = Field(default=None, max_length=20)
    org_id: str | None = Field(default=None, max_length=26)
    portal: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=26, index=True)
    message_id: str | None = Field(default=None, max_length=26, index=True, description="Conversation message.")
    recipient_id: str | None = Field(default=None, max_length=26)
    recipient_email: str | None = Field(default=None, max_length=320)
    subject: str = Field(default="", max_length=2000)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    purpose: str = Field(max_length=40, description="reply, access_code, ...")
    email_message_id: str | None = Field(default=None, max_length=300)
    status: str = Field(max_length=10)  # pending | sent | failed | cancelled | bounced
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UtcDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ThreadMessage(SQLModel, table=True):
    """E-mail Message-IDs of a conversation, sent and received: threading headers and reply matching."""

    __tablename__ = "thread_messages"

    email_message_id: str = Field(primary_key=True, max_length=300)
    conversation_id: str = Field(max_length=26, index=True)
    created_at: datetime = Field(sa_type=UtcDateTime)


class ChannelWebhook(SQLModel, table=True):
    """Where an org's outbound messages on a channel go, and the secret they are signed with."""

    __tablename__ = "channel_webhooks"

    org_id: str = Field(primary_key=True, max_length=26)
    channel: str = Field(primary_key=True, max_length=20)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UtcDateTime)


class ReceivedEmail(SQLModel, table=True):
    """E-mails accepted over SMTP: the same e-mail delivered twice is posted once."""

    __tablename__ = "received_emails"

    email_message_id: str = Field(primary_key=True, max_length=300)
    from_email: str = Field(max_length=320)
    matched_by: str = Field(max_length=20)
    created_at: datetime = Field(sa_type=UtcDateTime)
