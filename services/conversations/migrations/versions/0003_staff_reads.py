"""conversations: when each staff member last opened a conversation (the agent inbox's unread marker)

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_reads",
        sa.Column("reader", sa.String(80), primary_key=True),
        sa.Column("conversation_id", sa.String(26), primary_key=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staff_reads")
