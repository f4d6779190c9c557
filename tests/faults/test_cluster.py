"""A NATS cluster node dies under load: Portico carries on against the other two, and nothing is lost or doubled.

Three nats-server processes form a JetStream cluster on loopback ports; auth, conversations, notifications,
kb and the gateway run against it with every stream, KV bucket and Object Store on 3 servers
(PORTICO_NATS_REPLICAS=3). Customers post messages through the gateway and an agent answers, each answer
e-mailed to a real SMTP server. Meanwhile the server leading the conversations stream is killed (`kill -9`)
and started again a few seconds later. Afterwards: every accepted (2xx) request is stored once, every answer
e-mailed once, the notifications' read model counts what conversations holds, and every durable consumer has
caught up. The counts and the longest pause a client saw are printed (`pytest -s` shows them).
"""

import asyncio
import time

import nats
import pytest

from nats.js.api import AckPolicy, ConsumerConfig

from contracts.subjects import DLQ_STREAM, STREAMS
from services.runtime.kv import ensure_bucket
from services.runtime.nats import EmbeddedNatsCluster, ensure_streams
from services.runtime.objects import ensure_object_store
from tests.faults.load import report, run_load, verify
from tests.kit.mail import eventually

pytestmark = pytest.mark.faults

CUSTOMERS = 4
LOAD_BEFORE_KILL = 3.0  # seconds
DOWN_FOR = 4.0
LOAD_AFTER_RESTART = 5.0


async def leader_of(cluster: EmbeddedNatsCluster, stream: str):  # type: ignore[no-untyped-def]
    """The server leading `stream`, once every stream, KV bucket and Object Store is seen kept on 3 servers."""
    nc = await nats.connect(cluster.urls, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        copies = {info.config.name: info.config.num_replicas for info in await js.streams_info()}
        assert {"KV_sessions", "OBJ_attachments", stream} <= set(copies) and set(copies.values()) == {3}, copies
        return await cluster.leader_of(js, stream)
    finally:
        await nc.close()


async def test_killing_the_stream_leader_loses_and_doubles_nothing(demo, sink, nats_cluster, settings, capsys):
    load = await run_load(demo, demo.agent, CUSTOMERS)
    clients = load.clients
    try:
        await asyncio.sleep(LOAD_BEFORE_KILL)
        leader = await leader_of(nats_cluster, STREAMS["conversations"])
        leader.kill()
        killed_at = time.monotonic()
        await asyncio.sleep(DOWN_FOR)
        await asyncio.to_thread(leader.start)
        await asyncio.to_thread(leader.wait_healthy, 60)
        restarted_at = time.monotonic()
        await asyncio.sleep(LOAD_AFTER_RESTART)
    finally:
        await load.stop()
    assert any(ended > restarted_at for client in clients for _, status, _, ended in client.sent if status == 201)

    counts = await verify(clients, settings.database_url("conversations"), settings.database_url("notifications"),
                          sink, nats_cluster.urls)
    with capsys.disabled():
        print(f"\ncluster fault: leader {leader.server_name} of {STREAMS['conversations']} killed "
              f"{killed_at - load.started:.1f} s into the load, back after "
              f"{restarted_at - killed_at:.1f} s; {settings.database_url('conversations').split(':')[0]}")
        print(report(clients, counts))


async def test_streams_buckets_and_consumers_made_with_one_copy_are_brought_to_three(nats_cluster):
    """What an installation that ran with one replica sees when it starts with PORTICO_NATS_REPLICAS=3."""
    nc = await nats.connect(nats_cluster.urls)
    try:
        js = nc.jetstream()
        await ensure_streams(js, replicas=1)
        await js.add_consumer(STREAMS["conversations"], ConsumerConfig(durable_name="reader",
                                                                       ack_policy=AckPolicy.EXPLICIT))
        await ensure_bucket(js, "things", ttl_seconds=60, replicas=1)
        await ensure_object_store(js, "files", replicas=1)
        await js.publish("events.conversations.test", b"{}", stream=STREAMS["conversations"])

        await ensure_streams(js, replicas=3)
        await ensure_bucket(js, "things", ttl_seconds=60, replicas=3)
        await ensure_object_store(js, "files", replicas=3)
        await ensure_streams(js, replicas=3)  # again, as every replica of every service does: no error

        names = [*STREAMS.values(), DLQ_STREAM, "KV_things", "OBJ_files"]

        async def all_on_three_servers() -> bool:
            infos = [await js.stream_info(name) for name in names]
            consumer = await js.consumer_info(STREAMS["conversations"], "reader")
            return all(i.config.num_replicas == 3 and peers(i) == 2 for i in infos) and peers(consumer) == 2

        await eventually(all_on_three_servers, timeout=30)
        assert (await js.stream_info(STREAMS["conversations"])).state.messages == 1
    finally:
        await nc.close()


def peers(info) -> int:  # type: ignore[no-untyped-def]
    """Replicas a stream or consumer has besides its leader (none known while it moves)."""
    return len(info.cluster.replicas or []) if info.cluster else 0
