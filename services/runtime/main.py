"""Process entry point shared by every service."""

import asyncio
from collections.abc import Callable

from services.runtime.logging import configure_logging
from services.runtime.service import Service
from services.runtime.settings import Settings


def serve(name: str, build: Callable[[Settings], Service]) -> None:
    settings = Settings()
    configure_logging(name, settings.log_level)
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    run(build(settings).serve())
