"""Each service's schema comes from its own Alembic history, on SQLite and on PostgreSQL."""

import pytest
from sqlalchemy import inspect

from contracts.subjects import SERVICES
from services.runtime.db import make_engine
from services.runtime.migrations import downgrade, upgrade

EXPECTED = {
    "auth": {"orgs", "portals", "portal_secrets", "users", "api_keys", "access_codes", "staff_sessions", "outbox",
             "inbox"},
    "conversations": {"customers", "outbox", "inbox", "portal_settings", "conversations", "conversation_viewers",
                      "messages", "attachments", "idempotency_keys", "channel_secrets", "inbound_receipts",
                      "staff_reads"},
    "notifications": {"outbox", "inbox", "customer_addresses", "conversation_addresses", "participants", "notifications",
                      "thread_messages", "channel_webhooks", "received_emails"},
    "kb": {"outbox", "inbox", "kb_portals", "categories", "articles", "article_revisions", "themes"},
}


def tables(url: str) -> set[str]:
    """The service's own tables (not SQLite's FTS5 index tables, which the search keeps by itself)."""
    engine = make_engine(url)
    try:
        return {t for t in inspect(engine).get_table_names()
                if t != "alembic_version" and not t.startswith("article_search")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_upgrade_creates_the_schema_and_downgrade_removes_it(databases, service):
    url = databases.url(service)  # migrated to head
    assert tables(url) == EXPECTED[service]
    upgrade(service, url)  # again: nothing to do, nothing breaks
    downgrade(service, url)
    assert tables(url) == set()
    upgrade(service, url)
    assert tables(url) == EXPECTED[service]


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models(databases, service):
    """The tables Alembic builds are the tables the code reads and writes: no column or index drifts."""
    import importlib
    import importlib.util

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    if importlib.util.find_spec(f"services.{service}.models"):
        importlib.import_module(f"services.{service}.models")
    import services.runtime.inbox  # noqa: F401
    import services.runtime.outbox  # noqa: F401

    engine = make_engine(databases.url(service))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diffs = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()

    def search_index(diff: object) -> bool:
        if not isinstance(diff, tuple):
            return False
        if diff[0] == "remove_column":
            return diff[3].name == "search"
        return diff[0] == "remove_index" and diff[1].name == "ix_articles_search"

    def table_of(diff: object) -> str | None:
        item = diff[0] if isinstance(diff, list) else diff
        if isinstance(item[1], str) or item[1] is None:  # ("add_column", schema, table, ...), ("modify_*", ...)
            return item[2]
        target = item[1]  # a Table, an Index or a constraint
        return getattr(target, "name", None) if item[0].endswith("_table") else target.table.name

    # The full-text index is the migrations' alone (a generated tsvector column on PostgreSQL).
    own = [d for d in diffs if table_of(d) in EXPECTED[service] and not search_index(d)]
    assert own == []
