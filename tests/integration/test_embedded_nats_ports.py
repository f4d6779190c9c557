"""The embedded nats-server when a port it was meant to use is taken by another process before it binds it
(free ports come from the same range as outgoing connections): a port it chose itself is picked again on the
first start, a route port makes the whole cluster start on new ports, and a port given is never silently
replaced; the error says so at once, with the server's own words, instead of a 10 s wait for nothing."""

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.runtime import nats as runtime_nats
from services.runtime.nats import EmbeddedNats, EmbeddedNatsCluster, ServerExited


@contextmanager
def free_ports_handing_out_first(port: int) -> Iterator[list[int]]:
    """`free_port()` answers `port` once (as if another process took it just after), then real free ports;
    yields the list of every port handed out."""
    handed: list[int] = []
    real = runtime_nats.free_port

    def first_taken(host: str = "127.0.0.1") -> int:
        handed.append(port if not handed else real(host))
        return handed[-1]

    runtime_nats.free_port = first_taken
    try:
        yield handed
    finally:
        runtime_nats.free_port = real


@contextmanager
def listening_on(port: int = 0) -> Iterator[int]:
    """Another process's listener on `port` (0: a port of the kernel's choosing); yields the port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_chosen_client_port_taken_before_the_server_binds_it_is_picked_again(tmp_path: Path) -> None:
    with listening_on() as port, free_ports_handing_out_first(port) as handed:
        server = EmbeddedNats(tmp_path / "nats").start()
    try:
        assert handed[0] == port and server.port != port and server.port in handed
        assert server.running
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    finally:
        server.stop()


def test_a_given_port_in_use_fails_at_once_in_the_servers_words(tmp_path: Path) -> None:
    with listening_on() as port:
        started = time.monotonic()
        with pytest.raises(ServerExited) as raised:
            EmbeddedNats(tmp_path / "nats", port=port).start()
        assert time.monotonic() - started < 5  # not the 10 s wait for a port nobody will open
    assert raised.value.port_taken and "address already in use" in raised.value.log
    assert f"port {port}" in str(raised.value)


def test_a_restart_keeps_its_port_even_when_it_was_chosen(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    port = server.port
    server.stop()
    try:
        with listening_on(port):  # another process took it meanwhile
            with pytest.raises(ServerExited):
                server.start()
        assert server.port == port  # clients know this address: never moved behind their back
        server.start()
        assert server.port == port and server.running
    finally:
        server.stop()


def test_a_cluster_whose_route_port_is_taken_starts_on_new_ports(tmp_path: Path) -> None:
    with listening_on() as port, free_ports_handing_out_first(port):
        cluster = EmbeddedNatsCluster(tmp_path / "cluster")
        assert cluster.nodes[0].cluster is not None and cluster.nodes[0].cluster.port == port
        cluster.start()
    try:
        assert all(node.running for node in cluster.nodes)
        assert port not in {node.cluster.port for node in cluster.nodes if node.cluster}
        assert port not in {node.port for node in cluster.nodes}
    finally:
        cluster.stop()


def test_a_cluster_started_again_keeps_its_ports_and_stores(tmp_path: Path) -> None:
    cluster = EmbeddedNatsCluster(tmp_path / "cluster").start()
    urls, routes = cluster.urls, [node.cluster.port for node in cluster.nodes if node.cluster]
    cluster.stop()
    kept = cluster.nodes[0].store_dir / "kept"
    kept.write_text("data")
    try:
        with listening_on(routes[0]):  # another process took a route port meanwhile
            with pytest.raises(ServerExited) as raised:
                cluster.start()
        assert raised.value.route_port_taken
        assert cluster.urls == urls and kept.read_text() == "data"  # never moved nor emptied behind clients
        assert not any(node.running for node in cluster.nodes)  # none left running after the error
        cluster.start()
        assert cluster.urls == urls and all(node.running for node in cluster.nodes)
    finally:
        cluster.stop()
