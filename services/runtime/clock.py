"""The one clock: every timestamp Portico stores or compares is an aware UTC datetime."""

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
