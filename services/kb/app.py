"""kb' composition root."""

from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    return Service("kb", settings or Settings(), **overrides)  # type: ignore[arg-type]
