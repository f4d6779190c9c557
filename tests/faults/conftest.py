"""Fixtures of the fault suite: a three-server NATS JetStream cluster on loopback ports, and Portico running
against it with replicated streams, its e-mail going to a real SMTP sink; a single nats-server (`nats_single`)
for the tests that run Portico as processes (tests/faults/portico.py).

`make test-faults` runs this folder; the whole suite runs it too (marker `faults`: `-m "not faults"` leaves it out).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime.nats import EmbeddedNats, EmbeddedNatsCluster
from services.runtime.settings import Settings
from tests.conftest import make_settings
from tests.kit.email import demo, sink  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: kills processes under load (tests/faults, make test-faults)")


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[EmbeddedNatsCluster]:
    """Three nats-server processes clustered over loopback routes, stopped at the end."""
    cluster = EmbeddedNatsCluster(tmp_path / "nats").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def nats_single(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """One nats-server with its monitoring port (for /healthz after a restart), stopped at the end."""
    server = EmbeddedNats(tmp_path / "nats", http_port=0).start()
    yield server
    server.stop()


@pytest.fixture
def settings(nats_cluster, databases, tmp_path, sink) -> Settings:  # type: ignore[no-untyped-def]
    """Portico on the cluster (PORTICO_NATS_URL listing the three servers), every stream, bucket and
    Object Store kept on 3 servers, answers e-mailed to the sink."""
    return make_settings(nats_cluster.url, databases, tmp_path / "var", smtp_url=sink.url, nats_replicas=3,
                         notification_backoff=(0.2, 0.5, 1.0))
