"""Each service's schema comes from its own Alembic history, on SQLite and on PostgreSQL."""

import pytest
from sqlalchemy import inspect

from contracts.subjects import SERVICES
from services.runtime.db import make_engine
from services.runtime.migrations import downgrade, upgrade

EXPECTED = {
    "auth": {"orgs", "portals", "portal_secrets", "users", "api_keys", "access_codes", "outbox", "inbox"},
    "conversations": {"customers", "outbox", "inbox"},
    "notifications": {"outbox", "inbox"},
    "kb": {"outbox", "inbox"},
}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
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
