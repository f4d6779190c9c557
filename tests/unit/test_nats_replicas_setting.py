"""PORTICO_NATS_URL may list a cluster's servers; PORTICO_NATS_REPLICAS follows it unless set."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.runtime.nats import ClusterRoutes, dlq_stream_config, stream_config, write_server_config
from services.runtime.settings import Settings


def test_one_server_keeps_one_copy_and_a_cluster_three() -> None:
    one = Settings(nats_url="nats://10.0.0.1:4222")
    assert one.nats_servers == ["nats://10.0.0.1:4222"] and one.resolved_nats_replicas == 1
    cluster = Settings(nats_url="nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222")
    assert cluster.nats_servers == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
    assert cluster.resolved_nats_replicas == 3
    assert Settings().nats_servers == ["nats://127.0.0.1:4222"] and Settings().resolved_nats_replicas == 1


def test_an_explicit_replica_count_wins_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_NATS_REPLICAS", "5")
    monkeypatch.setenv("PORTICO_NATS_URL", "nats://nats:4222")  # one address in front of a cluster
    assert Settings().resolved_nats_replicas == 5
    for wrong in ("0", "6"):
        monkeypatch.setenv("PORTICO_NATS_REPLICAS", wrong)
        with pytest.raises(ValidationError):
            Settings()


def test_streams_carry_the_replica_count() -> None:
    assert stream_config("conversations").num_replicas == 1 and dlq_stream_config().num_replicas == 1
    assert stream_config("conversations", 3).num_replicas == 3 and dlq_stream_config(3).num_replicas == 3


def test_a_cluster_server_config_names_the_server_and_routes_to_its_peers(tmp_path: Path) -> None:
    text = write_server_config(tmp_path, 4300, server_name="portico-1",
                               cluster=ClusterRoutes(name="portico", port=6300, routes=(6301, 6302))).read_text()
    assert "server_name: portico-1" in text and "sync_interval: always" in text
    assert "listen: 127.0.0.1:6300" in text
    assert 'routes: ["nats-route://127.0.0.1:6301", "nats-route://127.0.0.1:6302"]' in text
    assert "cluster {" not in write_server_config(tmp_path / "single", 4301).read_text()
