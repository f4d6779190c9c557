"""Prometheus metrics: the gateway's `/metrics` and a service replica's metrics port (with its own
`/healthz`), scraped after real requests through the real stack."""

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.nats import EmbeddedNats, free_port
from services.runtime.settings import Settings
from tests.conftest import Databases, make_settings
from tests.helpers import wait_until
from tests.kit.codes import code_for, mailbox
from tests.kit.seeding import EMAIL_PATH, seed

VERIFY = "/api/v1/portals/demo/session/email/verify"


@pytest.fixture
def settings(nats_server: EmbeddedNats, databases: Databases, tmp_path: Path) -> Settings:
    """The stack's services share one metrics port (one process): `PORTICO_METRICS_PORT` set."""
    return make_settings(nats_server.url, databases, tmp_path / "var", metrics_port=free_port())


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    return sum(v for n, found, v in samples(text) if n == name and labels.items() <= found.items())


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_gateway_and_service_metrics_move_after_requests(settings, stack, gateway):
    seed(settings)
    metrics_url = f"http://127.0.0.1:{settings.metrics_port}"
    before_gateway = await scrape(f"{gateway.base_url}/metrics")
    before_service = await scrape(f"{metrics_url}/metrics")

    email = "metrics@example.com"
    response = await gateway.client.post(EMAIL_PATH, json={"email": email})
    assert response.status_code == 202, response.text
    await wait_until(lambda: any(m["To"] == email for m in mailbox(settings)), timeout=20)
    verified = await gateway.client.post(VERIFY, json={"email": email, "code": code_for(settings, email)})
    assert verified.status_code == 200, verified.text
    wrong = await gateway.client.post(VERIFY, json={"email": email, "code": "000000"})
    assert wrong.status_code >= 400
    missing = await gateway.client.get("/api/v1/conversations/01JNOTANID0000000000000000")
    assert missing.status_code in (401, 404)

    after_gateway = await scrape(f"{gateway.base_url}/metrics")
    http = [(labels, v) for n, labels, v in samples(after_gateway) if n == "portico_http_requests_total"]
    routes = {labels["route"] for labels, _ in http}
    assert "/api/v1/portals/{portal}/session/email" in routes, routes
    assert not any("demo" in route or "01JNOTANID" in route for route in routes), routes  # templates, no ids
    route = "/api/v1/portals/{portal}/session/email"
    assert value(after_gateway, "portico_http_requests_total", route=route, method="POST", status="202") - \
        value(before_gateway, "portico_http_requests_total", route=route, method="POST", status="202") == 1
    assert value(after_gateway, "portico_http_request_duration_seconds_count", route=route, method="POST") >= 1

    # The consumers apply the events the requests caused; the relay publishes them.
    async def service_moved() -> bool:
        text = await scrape(f"{metrics_url}/metrics")
        return (value(text, "portico_events_handled_total", outcome="applied")
                > value(before_service, "portico_events_handled_total", outcome="applied")
                and value(text, "portico_emails_total", outcome="sent")
                > value(before_service, "portico_emails_total", outcome="sent"))

    await wait_until(service_moved, timeout=20)
    after_service = await scrape(f"{metrics_url}/metrics")
    delta = value(after_service, "portico_rpc_duration_seconds_count", service="auth",
                  operation="start_email_access", outcome="ok") - \
        value(before_service, "portico_rpc_duration_seconds_count", service="auth",
              operation="start_email_access", outcome="ok")
    assert delta == 1
    assert value(after_service, "portico_sign_ins_total", method="email_code", outcome="ok") - \
        value(before_service, "portico_sign_ins_total", method="email_code", outcome="ok") == 1
    failed = [labels for n, labels, v in samples(after_service)
              if n == "portico_sign_ins_total" and labels["method"] == "email_code" and labels["outcome"] != "ok"]
    assert failed, "the wrong code is counted as a failed sign-in"

    # Gauges refreshed in the background: present for each consumer and each service.
    await wait_until(lambda: _has_gauges(metrics_url), timeout=20)


async def _has_gauges(metrics_url: str) -> bool:
    text = await scrape(f"{metrics_url}/metrics")
    lag = {labels["consumer"] for n, labels, _ in samples(text) if n == "portico_consumer_lag"}
    backlog = {labels["service"] for n, labels, _ in samples(text) if n == "portico_outbox_backlog"}
    return "notifications-from-auth" in lag and {"auth", "conversations", "notifications", "kb"} <= backlog


async def test_metrics_port_health_is_this_replicas_own(settings, stack, nats_server):
    url = f"http://127.0.0.1:{settings.metrics_port}/healthz"
    async with httpx.AsyncClient(timeout=5) as client:
        ok = await client.get(url)
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "ok"
        assert set(ok.json()["services"]) == {"auth", "conversations", "notifications", "kb"}
        assert (await client.get(f"http://127.0.0.1:{settings.metrics_port}/nothing")).status_code == 404

        nats_server.stop()
        try:
            async def down() -> bool:
                response = await client.get(url)
                return response.status_code == 503 and "auth:nats" in response.json()["down"]

            await wait_until(down, timeout=20)
        finally:
            nats_server.start()

        async def up() -> bool:
            return (await client.get(url)).status_code == 200

        await wait_until(up, timeout=30)
