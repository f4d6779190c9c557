"""The page tests: a running Portico (real NATS, SQLite files, a real SMTP sink) and a real Chromium.

Pages are the gateway's own (no database of their own), and the services' behaviour on PostgreSQL is
proven by the API tests: the browser tests run on SQLite only, to keep the suite's time in check.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Databases
from tests.kit.browser import Chromium, chromium_missing
from tests.kit.email import demo, settings, sink  # noqa: F401  (fixtures)
from tests.kit.portal import company  # noqa: F401  (fixture: the company's own login page)


@pytest.fixture
def databases(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield Databases("sqlite", tmp_path)


@pytest.fixture
async def chromium() -> AsyncIterator[Chromium]:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    browser = await Chromium().start()
    yield browser
    await browser.stop()
