"""JSON logs, one object a line, carrying the correlation id of the request or event being handled."""

import logging
import sys
from contextvars import ContextVar
from typing import Any, TextIO

import structlog

from contracts.envelope import new_id

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Never logged, whatever a caller passes: secrets, tokens, codes, message bodies.
REDACTED_KEYS = frozenset({
    "password", "secret", "token", "code", "authorization", "api_key", "cookie", "body", "externaltoken",
})


def current_correlation_id() -> str:
    """The correlation id in force, or a new one when nothing started a chain."""
    value = correlation_id.get()
    if value is None:
        value = new_id()
        correlation_id.set(value)
    return value


def _add_correlation_id(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    value = correlation_id.get()
    if value is not None:
        event_dict.setdefault("correlation_id", value)
    return event_dict


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(process: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route structlog and the standard library (uvicorn, nats, faststream) to JSON lines."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Filters below the level before any processing: a debug line costs nothing in production.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=shared,
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(process=process)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
