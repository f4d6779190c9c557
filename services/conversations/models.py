"""conversations' tables. They never leave the service: callers get the views in `contracts.conversations`."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from contracts.states import AuthorKind, ConversationStatus, MessageKind, ReopenPolicy, ViewerRole, Visibility
from services.runtime.db import UtcDateTime


class Customer(SQLModel, table=True):
    """conversations' own copy of an account, built from auth's `UserRegistered` events."""

    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(index=True, max_length=26)
    email: str = Field(max_length=320)
    display_name: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=20)
    registered_at: datetime = Field(sa_type=UtcDateTime)
    version: int = Field(description="aggregate_version of the last event applied")


class PortalConfig(SQLModel, table=True):
    """A portal's conversation settings; a portal without a row has the defaults."""

    __tablename__ = "portal_settings"

    portal: str = Field(primary_key=True, max_length=100)
    org_id: str = Field(max_length=26)
    my_conversations_enabled: bool = True
    reopen_enabled: bool = True
    reopen_policy: ReopenPolicy = Field(default=ReopenPolicy.always, sa_type=String(20))
    reopen_within_days: int = 7
    detail_attributes: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # None: the limit from the process settings (PORTICO_MAX_*).
    max_body_chars: int | None = None
    max_files: int | None = None
    max_file_bytes: int | None = None
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_org_updated", "org_id", "updated_at", "id"),
        Index("ix_conversations_thread", "org_id", "channel", "thread_key"),
    )

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(max_length=26)
    portal: str = Field(max_length=100)
    customer_id: str = Field(max_length=26, description="Reporter: the customer answers go to.")
    channel: str = Field(max_length=20, description="Channel it started on.")
    reply_channel: str = Field(max_length=20, description="Channel answers go out on now.")
    status: ConversationStatus = Field(sa_type=String(10))
    subject: str = Field(max_length=2000)
    assignee_id: str | None = Field(default=None, max_length=26)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    preview: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime, description="Any change, notes included (agent inbox order).")
    last_activity_at: datetime = Field(sa_type=UtcDateTime, description="Last change a customer can see.")
    last_agent_reply_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    linked_from: str | None = Field(default=None, max_length=26)
    thread_key: str | None = Field(default=None, max_length=200, description="Inbound channel thread id.")
    next_seq: int = 1
    version: int = Field(default=1, description="aggregate_version of the last event published for it.")


class ConversationViewer(SQLModel, table=True):
    """Who sees a conversation in My Conversations, with the fields the list sorts and filters on.

    `viewer` is a user id, or `s:<session key>` for the browser that created it anonymously or
    unverified (such a browser sees only those). Keeping the sort key here lets the list read one
    index range whatever the number of conversations a customer has.
    """

    __tablename__ = "conversation_viewers"
    __table_args__ = (Index("ix_viewers_list", "viewer", "portal", "last_activity_at", "conversation_id"),)

    viewer: str = Field(primary_key=True, max_length=80)
    conversation_id: str = Field(primary_key=True, max_length=26, index=True)
    portal: str = Field(max_length=100)
    role: ViewerRole = Field(sa_type=String(20), description="`former` is listed for agents only.")
    status: ConversationStatus = Field(sa_type=String(10))
    channel: str = Field(max_length=20)
    last_activity_at: datetime = Field(sa_type=UtcDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class StaffRead(SQLModel, table=True):
    """When a staff member (or API key) last opened a conversation: the agent inbox's `unread`."""

    __tablename__ = "staff_reads"

    reader: str = Field(primary_key=True, max_length=80, description="The actor's principal: `user:<id>`, `key:<id>`.")
    conversation_id: str = Field(primary_key=True, max_length=26)
    read_at: datetime = Field(sa_type=UtcDateTime)


class Message(SQLModel, table=True):
    """One timeline entry: a message, an internal note, or an event (closed, reopened, ...)."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_seq", "conversation_id", "seq", unique=True),)

    id: str = Field(primary_key=True, max_length=26)
    conversation_id: str = Field(max_length=26)
    seq: int
    kind: MessageKind = Field(sa_type=String(10))
    author_id: str | None = Field(default=None, max_length=40)
    author_kind: AuthorKind = Field(sa_type=String(10))
    visibility: Visibility = Field(sa_type=String(10))
    channel: str = Field(max_length=20)
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    event: str | None = Field(default=None, max_length=30)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    event_id: str | None = Field(default=None, max_length=26, description="The MessagePosted that carried it.")
    redacted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    redacted_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_type=UtcDateTime)


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"

    id: str = Field(primary_key=True, max_length=26, description="Also its name in the Object Store.")
    org_id: str = Field(max_length=26)
    conversation_id: str = Field(max_length=26, index=True)
    message_id: str = Field(max_length=26, index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """A POST answered under an `Idempotency-Key`: a retry gets this answer back instead of a second effect."""

    __tablename__ = "idempotency_keys"

    scope: str = Field(primary_key=True, max_length=80, description="Who sent it (viewer or staff principal).")
    key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64, description="SHA-256 of the operation and its input.")
    response: str = Field(sa_column=Column(Text, nullable=False))
    resource_id: str = Field(max_length=26, index=True, description="The message or conversation it created.")
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)


class ChannelSecret(SQLModel, table=True):
    """An org's secret for signing inbound channel requests; the previous one works for a day after a rotation."""

    __tablename__ = "channel_secrets"

    org_id: str = Field(primary_key=True, max_length=26)
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)


class InboundReceipt(SQLModel, table=True):
    """An inbound channel message already accepted: the provider's retry stores nothing new."""

    __tablename__ = "inbound_receipts"

    org_id: str = Field(primary_key=True, max_length=26)
    channel: str = Field(primary_key=True, max_length=20)
    external_message_id: str = Field(primary_key=True, max_length=200)
    conversation_id: str = Field(max_length=26)
    message_id: str = Field(max_length=26)
    created_at: datetime = Field(sa_type=UtcDateTime)
