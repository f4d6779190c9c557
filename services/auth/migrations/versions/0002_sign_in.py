"""auth: portal secrets and sign-in settings

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portals") as batch:
        batch.add_column(sa.Column("custom_sign_on_redirect_uri", sa.String(2000)))
        batch.add_column(sa.Column("idle_timeout_minutes", sa.Integer, nullable=False, server_default="120"))
        batch.add_column(sa.Column("sso_token_max_age_minutes", sa.Integer, nullable=False, server_default="15"))
        batch.add_column(sa.Column("anonymous_user_id", sa.String(26)))
    op.create_table(
        "portal_secrets",
        sa.Column("kid", sa.String(40), primary_key=True),
        sa.Column("portal_id", sa.String(26), sa.ForeignKey("portals.id"), nullable=False, index=True),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("portal_secrets")
    with op.batch_alter_table("portals") as batch:
        batch.drop_column("anonymous_user_id")
        batch.drop_column("sso_token_max_age_minutes")
        batch.drop_column("idle_timeout_minutes")
        batch.drop_column("custom_sign_on_redirect_uri")
