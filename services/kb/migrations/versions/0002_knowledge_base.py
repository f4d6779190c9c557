"""kb: portals and their switches, categories, articles with revisions, themes; the full-text index
(SQLite: FTS5 table `article_search`; PostgreSQL: generated tsvector column `articles.search` + GIN)

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
        "kb_portals",
        sa.Column("slug", sa.String(100), primary_key=True),
        sa.Column("org_id", sa.String(26), nullable=False),
        sa.Column("kb_id", sa.String(36), nullable=False),
        sa.Column("portal_for_agents", sa.Boolean, nullable=False),
        sa.Column("internal_kb", sa.Boolean, nullable=False),
        sa.Column("show_only_internal", sa.Boolean, nullable=False),
        sa.Column("content_version", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("portal", sa.String(100), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.UniqueConstraint("portal", "slug", name="uq_categories_portal_slug"),
    )
    op.create_table(
        "articles",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("portal", sa.String(100), nullable=False, index=True),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("category_id", sa.String(26)),
        sa.Column("visibility", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("locale", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("published_at", TS),
        sa.UniqueConstraint("portal", "slug", name="uq_articles_portal_slug"),
    )
    op.create_table(
        "article_revisions",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("article_id", sa.String(26), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("visibility", sa.String(10), nullable=False),
        sa.Column("author", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "themes",
        sa.Column("portal", sa.String(100), primary_key=True),
        sa.Column("draft", sa.JSON),
        sa.Column("published", sa.JSON),
        sa.Column("updated_at", TS, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS ("
                   "setweight(to_tsvector('english', title), 'A') || "
                   "setweight(to_tsvector('english', translate(body_text, '<>', '‹›')), 'B')) STORED")
        op.execute("CREATE INDEX ix_articles_search ON articles USING gin (search)")
    else:
        # Published articles only, with the columns a search filters on, so that it reads nothing else.
        op.execute("CREATE VIRTUAL TABLE article_search USING fts5("
                   "title, body, article_id UNINDEXED, portal UNINDEXED, visibility UNINDEXED, "
                   "category_id UNINDEXED, tokenize = 'porter unicode61')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE article_search")
    for table in ("themes", "article_revisions", "articles", "categories", "kb_portals"):
        op.drop_table(table)
