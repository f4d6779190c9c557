"""conversations: portal settings, conversations, viewers, messages, attachments, idempotency keys,
channel secrets, inbound receipts

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portal_settings",
        sa.Column("portal", sa.String(100), primary_key=True),
        sa.Column("org_id", sa.String(26), nullable=False),
        sa.Column("my_conversations_enabled", sa.Boolean, nullable=False),
        sa.Column("reopen_enabled", sa.Boolean, nullable=False),
        sa.Column("reopen_policy", sa.String(20), nullable=False),
        sa.Column("reopen_within_days", sa.Integer, nullable=False),
        sa.Column("detail_attributes", sa.JSON, nullable=False),
        sa.Column("max_body_chars", sa.Integer),
        sa.Column("max_files", sa.Integer),
        sa.Column("max_file_bytes", sa.Integer),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("org_id", sa.String(26), nullable=False),
        sa.Column("portal", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(26), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("reply_channel", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(2000), nullable=False),
        sa.Column("assignee_id", sa.String(26)),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("preview", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_activity_at", TS, nullable=False),
        sa.Column("last_agent_reply_at", TS),
        sa.Column("closed_at", TS),
        sa.Column("linked_from", sa.String(26)),
        sa.Column("thread_key", sa.String(200)),
        sa.Column("next_seq", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_conversations_org_updated", "conversations", ["org_id", "updated_at", "id"])
    op.create_index("ix_conversations_thread", "conversations", ["org_id", "channel", "thread_key"])
    op.create_table(
        "conversation_viewers",
        sa.Column("viewer", sa.String(80), primary_key=True),
        sa.Column("conversation_id", sa.String(26), primary_key=True),
        sa.Column("portal", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("last_activity_at", TS, nullable=False),
        sa.Column("read_at", TS),
    )
    op.create_index("ix_conversation_viewers_conversation_id", "conversation_viewers", ["conversation_id"])
    op.create_index("ix_viewers_list", "conversation_viewers", ["viewer", "portal", "last_activity_at",
                                                                "conversation_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("conversation_id", sa.String(26), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("author_id", sa.String(40)),
        sa.Column("author_kind", sa.String(10), nullable=False),
        sa.Column("visibility", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("event", sa.String(30)),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("event_id", sa.String(26)),
        sa.Column("redacted_at", TS),
        sa.Column("redacted_by", sa.String(40)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_messages_conversation_seq", "messages", ["conversation_id", "seq"], unique=True)
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("org_id", sa.String(26), nullable=False),
        sa.Column("conversation_id", sa.String(26), nullable=False),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("deleted_at", TS),
    )
    op.create_index("ix_attachments_conversation_id", "attachments", ["conversation_id"])
    op.create_index("ix_attachments_message_id", "attachments", ["message_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("resource_id", sa.String(26), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_idempotency_keys_resource_id", "idempotency_keys", ["resource_id"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "channel_secrets",
        sa.Column("org_id", sa.String(26), primary_key=True),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("previous_secret", sa.String(100)),
        sa.Column("previous_until", TS),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "inbound_receipts",
        sa.Column("org_id", sa.String(26), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("external_message_id", sa.String(200), primary_key=True),
        sa.Column("conversation_id", sa.String(26), nullable=False),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("inbound_receipts", "channel_secrets", "idempotency_keys", "attachments", "messages",
                  "conversation_viewers", "conversations", "portal_settings"):
        op.drop_table(table)
