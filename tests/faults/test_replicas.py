"""Two replicas of every service and of the gateway share the load; one of each dies: nothing lost or doubled.

auth, conversations, notifications, kb and the gateway run twice each as separate OS processes on one
nats-server (the two gateways on two ports), with real databases (SQLite files; PostgreSQL too when
PORTICO_TEST_POSTGRES_URL is set) and a real SMTP server receiving the answers' e-mails. The customers are
spread over both gateways, and there is an agent on each; every post carries an Idempotency-Key and a post not
accepted is sent again with it to the other gateway, as a load balancer would. Mid-load one replica of each
service and one gateway are killed (`kill -9`) one after the other and stay down; the survivors carry the load.
Afterwards (tests/faults/load.py `verify`): every post stored exactly once, every answer e-mailed exactly once
(by Message-ID), the read models agree, every durable consumer caught up. The counts and the longest pause a
client saw are printed (`pytest -s` shows them).
"""

import asyncio
import time

import pytest

from services.runtime.settings import Settings
from tests.conftest import make_settings
from tests.faults.load import report, run_load, verify
from tests.faults.portico import SERVICES, Portico

pytestmark = pytest.mark.faults

CUSTOMERS = 4
LOAD_BEFORE = 3.0  # seconds of load with every replica up
BETWEEN_KILLS = 0.5
LOAD_AFTER = 5.0  # seconds of load on the survivors


@pytest.fixture
def settings(nats_single, databases, tmp_path, sink) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(nats_single.url, databases, tmp_path / "var", smtp_url=sink.url)


async def test_killing_one_replica_of_each_loses_and_doubles_nothing(nats_single, settings, sink, tmp_path, capsys):
    with Portico(tmp_path, nats_single, settings, replicas=2) as portico:
        await portico.start_all()
        demo = await portico.demo()
        load = await run_load(demo, demo.agent, CUSTOMERS, retry=True,  # type: ignore[attr-defined]
                              base_urls=portico.base_urls)
        try:
            await asyncio.sleep(LOAD_BEFORE)
            killed_at = time.monotonic()
            for service in (*SERVICES, "gateway"):
                portico.kill(service, replica=1)
                await asyncio.sleep(BETWEEN_KILLS)
            await asyncio.sleep(LOAD_AFTER)
        finally:
            await load.stop()
            load_ended = time.monotonic()
            await demo.admin.aclose()
            await demo.agent.aclose()  # type: ignore[attr-defined]
        for client in load.clients:  # every client kept being served after the kills
            assert any(ended > killed_at + 2 and status == 201 for _, status, _, ended in client.sent), client.name

        counts = await verify(load.clients, settings.database_url("conversations"),
                              settings.database_url("notifications"), sink, [nats_single.url], retried=True)
        portico.check()  # the survivors still running

    with capsys.disabled():
        print(f"\ntwo replicas of each process, one of each killed "
              f"{killed_at - load.started:.1f} s into the load; "
              f"{settings.database_url('conversations').split(':')[0]}; load for {load_ended - load.started:.1f} s")
        print(report(load.clients, counts))
