"""OpenTelemetry traces: one request's trace spans the gateway, the service it calls and the consumers of
the event that service wrote (HTTP → RPC → outbox → event → consumer), with an in-memory exporter."""

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.runtime import tracing
from tests.helpers import count, wait_until
from tests.kit.seeding import EMAIL_PATH, seed


@pytest.fixture(autouse=True)
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this process before the stack and the gateway start; off again after the test."""
    memory = InMemorySpanExporter()
    tracing.configure("portico-test", memory)
    yield memory
    tracing.shutdown()


async def test_one_trace_spans_gateway_service_and_consumer(exporter, settings, stack, gateway):
    seed(settings)
    exporter.clear()
    response = await gateway.client.post(EMAIL_PATH, json={"email": "traced@example.com"},
                                         headers={"X-Request-Id": "traced-request"})
    assert response.status_code == 202, response.text
    conversations_db = settings.database_url("conversations")
    await wait_until(lambda: count(conversations_db, "customers", "email = 'traced@example.com'") == 1, timeout=20)

    def spans_named(prefix: str) -> list:
        return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]

    await wait_until(lambda: spans_named("conversations-from-auth "), timeout=20)
    [http] = spans_named("POST /api/v1/portals/{portal}/session/email")
    assert http.attributes["http.route"] == "/api/v1/portals/{portal}/session/email"
    assert http.attributes["http.response.status_code"] == 202
    trace_id = http.context.trace_id

    [rpc] = [s for s in spans_named("auth.start_email_access") if s.context.trace_id == trace_id]
    assert rpc.parent is not None and rpc.parent.span_id == http.context.span_id

    consumed = [s for s in spans_named("conversations-from-auth ") if s.context.trace_id == trace_id]
    assert consumed, [(s.name, s.context.trace_id) for s in exporter.get_finished_spans()]
    assert all(s.parent is not None and s.parent.span_id == rpc.context.span_id for s in consumed)


async def test_incoming_traceparent_is_continued(exporter, settings, stack, gateway):
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    response = await gateway.client.get("/readyz", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    assert response.status_code == 200, response.text
    [http] = [s for s in exporter.get_finished_spans() if s.name == "GET /readyz"]
    assert format(http.context.trace_id, "032x") == trace_id
    pings = [s for s in exporter.get_finished_spans() if s.name.endswith(".ping")]
    assert len(pings) == 4 and all(format(s.context.trace_id, "032x") == trace_id for s in pings)


def test_tracing_is_off_without_an_endpoint(monkeypatch):
    tracing.shutdown()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracing.configure_from_env("auth") is False and not tracing.ENABLED
    with tracing.span("nothing") as span:
        assert span is None
    assert tracing.inject({}) == {}


def test_the_sdk_is_not_imported_while_tracing_is_off():
    import os
    import subprocess
    import sys

    code = ("import sys\nfrom services.gateway.app import create_app\nimport services.auth.app\n"
            "create_app()\nprint(any(m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter')) for m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
