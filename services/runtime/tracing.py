"""OpenTelemetry traces across HTTP → RPC → outbox → event → consumer, when configured.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard OpenTelemetry variable; also
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, ... as the OTLP/HTTP exporter reads
them): then each process exports its spans over OTLP/HTTP in batches. While off, nothing of the SDK is
imported and every hook is a check of `ENABLED`.

How the context travels (W3C Trace Context, `traceparent`):
- the gateway opens a server span per HTTP request (named by route template, `GET /api/v1/...`);
- `RpcClient.call` opens a client span and puts its `traceparent` in the NATS request headers; the
  service's endpoint continues it in a server span (`<service>.<operation>`);
- an event written to the outbox inside that span remembers the span's `traceparent` (in memory, by
  event id, up to `REMEMBERED` events) and the relay sends it as a NATS header with the event; an
  event published by another process (after a crash, or by another replica's relay) carries none,
  and its consumer starts a new trace;
- a consumer continues the event's `traceparent` in a consumer span (`<consumer> <subject>`).
"""

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from threading import Lock
from typing import Any

ENABLED = False
REMEMBERED = 50_000  # events whose traceparent waits for the relay; the oldest are forgotten first

_tracer: Any = None
_provider: Any = None
_propagator: Any = None
_pending: "OrderedDict[str, str]" = OrderedDict()
_lock = Lock()


def configure_from_env(service: str) -> bool:
    """Turn tracing on for this process when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only variant)
    is set and tracing is not on yet; `service` becomes the resource's `service.name` (`portico-<service>`).
    Returns whether tracing is on."""
    if ENABLED:
        return True
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    configure(f"portico-{service}", OTLPSpanExporter(), batch=True)
    return True


def configure(service_name: str, exporter: Any, *, batch: bool = False) -> None:
    """Turn tracing on with `exporter` (an OpenTelemetry `SpanExporter`; the tests pass an
    `InMemorySpanExporter`), sending finished spans one by one or, with `batch`, in the background."""
    global ENABLED, _tracer, _provider, _propagator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    _provider, _tracer, _propagator = provider, provider.get_tracer("portico"), TraceContextTextMapPropagator()
    ENABLED = True


def shutdown() -> None:
    """Flush and turn tracing off (the end of a test; a process's exit)."""
    global ENABLED, _tracer, _provider
    ENABLED = False
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None
    with _lock:
        _pending.clear()


def _kind(name: str) -> Any:
    from opentelemetry.trace import SpanKind

    return getattr(SpanKind, name)


@contextmanager
def span(name: str, *, kind: str = "INTERNAL", parent: Mapping[str, str] | None = None,
         attributes: Mapping[str, Any] | None = None, start_time: int | None = None) -> Iterator[Any]:
    """A span named `name`, current inside the block; its parent is the `traceparent` in `parent` (NATS
    headers) when given, else the current span. `kind`: `SERVER`, `CLIENT`, `CONSUMER`, `INTERNAL`.
    `start_time`: nanoseconds since the epoch. Yields None when tracing is off. An exception leaving the
    block marks the span as an error and propagates."""
    if not ENABLED:
        yield None
        return
    context = _propagator.extract(carrier=dict(parent)) if parent is not None else None
    with _tracer.start_as_current_span(name, context=context, kind=_kind(kind), attributes=attributes,
                                       start_time=start_time) as current:
        yield current


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current span's `traceparent` (and `tracestate`) to `headers`; returns them."""
    if ENABLED:
        _propagator.inject(headers)
    return headers


def remember(event_id: str) -> None:
    """Keep the current span's `traceparent` for the outbox event `event_id` (see the module docstring)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    value = carrier.get("traceparent")
    if not value:
        return
    with _lock:
        _pending[event_id] = value
        if len(_pending) > REMEMBERED:
            _pending.popitem(last=False)


def traceparent_of(event_id: str) -> str | None:
    """The `traceparent` remembered for `event_id` (kept for a re-send; the oldest are forgotten), or None."""
    with _lock:
        return _pending.get(event_id)
