"""notifications: customers and conversations read models, participants, notifications, thread
message ids, channel webhooks, received e-mails

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
        "customer_addresses",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("org_id", sa.String(26), nullable=False),
        sa.Column("email", sa.String(320), nullable=False, index=True),
        sa.Column("display_name", sa.String(200)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "conversation_addresses",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("org_id", sa.String(26), nullable=False),
        sa.Column("portal", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(26), nullable=False),
        sa.Column("subject", sa.String(2000), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "participants",
        sa.Column("conversation_id", sa.String(26), primary_key=True),
        sa.Column("customer_id", sa.String(26), primary_key=True),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("cause_event_id", sa.String(26), nullable=False, unique=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(20)),
        sa.Column("org_id", sa.String(26)),
        sa.Column("portal", sa.String(100)),
        sa.Column("conversation_id", sa.String(26), index=True),
        sa.Column("message_id", sa.String(26), index=True),
        sa.Column("recipient_id", sa.String(26)),
        sa.Column("recipient_email", sa.String(320)),
        sa.Column("subject", sa.String(2000), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attachments", sa.JSON, nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("email_message_id", sa.String(300)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_until", TS),
        sa.Column("last_error", sa.String(500)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_table(
        "thread_messages",
        sa.Column("email_message_id", sa.String(300), primary_key=True),
        sa.Column("conversation_id", sa.String(26), nullable=False, index=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "channel_webhooks",
        sa.Column("org_id", sa.String(26), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "received_emails",
        sa.Column("email_message_id", sa.String(300), primary_key=True),
        sa.Column("from_email", sa.String(320), nullable=False),
        sa.Column("matched_by", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("received_emails", "channel_webhooks", "thread_messages", "notifications", "participants",
                  "conversation_addresses", "customer_addresses"):
        op.drop_table(table)
