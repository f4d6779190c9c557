"""kb: search moves to each replica's own index (`services.kb.search`, tantivy), so the database no longer
keeps one: SQLite's FTS5 table `article_search` and PostgreSQL's `articles.search` tsvector column with its
GIN index go (a downgrade makes them again from the articles)

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_articles_search")
        op.execute("ALTER TABLE articles DROP COLUMN IF EXISTS search")
    else:
        op.execute("DROP TABLE IF EXISTS article_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS ("
                   "setweight(to_tsvector('english', title), 'A') || "
                   "setweight(to_tsvector('english', translate(body_text, '<>', '‹›')), 'B')) STORED")
        op.execute("CREATE INDEX ix_articles_search ON articles USING gin (search)")
    else:
        op.execute("CREATE VIRTUAL TABLE article_search USING fts5("
                   "title, body, article_id UNINDEXED, portal UNINDEXED, visibility UNINDEXED, "
                   "category_id UNINDEXED, tokenize = 'porter unicode61')")
        op.execute("INSERT INTO article_search (title, body, article_id, portal, visibility, category_id) "
                   "SELECT title, body_text, id, portal, visibility, coalesce(category_id, '') FROM articles "
                   "WHERE status = 'published'")
