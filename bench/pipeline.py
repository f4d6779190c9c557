"""Event pipeline benchmark: outbox commit -> JetStream -> inbox consumer with its effect committed.

Prints, from one run on one nats-server:
  * a raw nats-py baseline: JetStream publish_async + pull fetch(500)/ack, messages per second;
  * Portico's pipeline throughput: auth's outbox rows committed, published by the relay, applied by a
    real conversations process (UserRegistered -> customers row + inbox row, committed), events per second;
  * end-to-end latency (commit -> consumer's effect) at a fixed offered rate, p50/p99;
and the ratio of the pipeline to the baseline.

    python bench/pipeline.py [--events 20000] [--rate 1000] [--seconds 5]
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

# harness first: it puts this checkout on sys.path for the imports below.
from harness import ROOT, fetch_and_ack, percentile, run_in_temp_dir, running_nats

from contracts.envelope import new_id
from contracts.events import UserRegistered
from services.runtime.db import make_engine, session_scope
from services.runtime.migrations import upgrade
from services.runtime.nats import ensure_streams
from services.runtime.outbox import OutboxRelay, record_event
from tests.helpers import rows


async def raw_baseline(url: str, n: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BASELINE", subjects=["baseline.>"], storage=StorageType.FILE))
    payload = b"x" * 400
    started = time.perf_counter()
    for i in range(n):
        await js.publish_async("baseline.e", payload, headers={"Nats-Msg-Id": f"b{i}"})
    await js.publish_async_completed()
    sub = await js.pull_subscribe("baseline.e", durable="baseline",
                                  config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))
    await fetch_and_ack(nc, sub, n)
    elapsed = time.perf_counter() - started
    await nc.close()
    return n / elapsed


def event_rows(session, count: int) -> dict[str, datetime]:  # type: ignore[no-untyped-def]
    written = {}
    for _ in range(count):
        user_id = new_id()
        envelope = record_event(session, UserRegistered(user_id=user_id, email=f"{user_id.lower()}@example.com",
                                                        kind="customer", method="email", portal="demo"),
                                org_id="org_bench", aggregate_id=user_id, aggregate_version=1)
        written[envelope.id] = envelope.occurred_at
    return written


def start_consumer(url: str, database_url: str, log_level: str) -> subprocess.Popen:
    env = {**os.environ, "PORTICO_NATS_URL": url, "PORTICO_CONVERSATIONS_DATABASE_URL": database_url,
           "PORTICO_LOG_LEVEL": log_level, "PORTICO_ENV": "test"}
    return subprocess.Popen([sys.executable, "-m", "services.conversations"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_applied(conv_db: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while rows(conv_db, "SELECT count(*) FROM inbox")[0][0] < expected:
        if time.monotonic() > deadline:
            raise TimeoutError("consumer did not catch up")
        await asyncio.sleep(0.05)


def processed_times(conv_db: str) -> dict[str, datetime]:
    return {event_id: (at if at.tzinfo else at.replace(tzinfo=UTC)) for event_id, at in
            ((r[0], r[1] if isinstance(r[1], datetime) else datetime.fromisoformat(r[1]))
             for r in rows(conv_db, "SELECT event_id, processed_at FROM inbox"))}


async def pipeline(url: str, work: Path, n: int, rate: int, seconds: float, log_level: str) -> dict[str, float]:
    auth_db = f"sqlite:///{work / 'auth.sqlite3'}"
    conv_db = f"sqlite:///{work / 'conversations.sqlite3'}"
    upgrade("auth", auth_db)
    upgrade("conversations", conv_db)
    engine = make_engine(auth_db)
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js)
    relay = OutboxRelay(engine, lambda: nc, batch=500, poll_interval=0.5)
    relay_task = asyncio.create_task(relay.run())
    consumer = start_consumer(url, conv_db, log_level)
    try:
        # Warm-up: the consumer process is up and has created its durable consumer.
        with session_scope(engine) as session:
            event_rows(session, 10)
        relay.wake()
        await wait_applied(conv_db, 10, timeout=60)

        # Throughput: commit n events (500 a transaction, as a batch import would) and wait for all effects.
        started = time.perf_counter()
        for offset in range(0, n, 500):
            with session_scope(engine) as session:
                event_rows(session, min(500, n - offset))
            relay.wake()
            await asyncio.sleep(0)
        await wait_applied(conv_db, n + 10, timeout=300)
        throughput = n / (time.perf_counter() - started)

        # The consumer process on its own: n events already in the stream, drained by a fresh process.
        consumer.terminate()
        consumer.wait(timeout=10)
        with session_scope(engine) as session:
            backlog = {}
            for offset in range(0, n, 500):
                backlog.update(event_rows(session, min(500, n - offset)))
        relay.wake()
        while rows(auth_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0]:
            await asyncio.sleep(0.05)
        consumer = start_consumer(url, conv_db, log_level)
        await wait_applied(conv_db, 2 * n + 10, timeout=300)
        done = processed_times(conv_db)
        applied_at = sorted(done[i] for i in backlog)
        consumer_rate = n / max((applied_at[-1] - applied_at[0]).total_seconds(), 1e-9)

        # Latency at a fixed offered rate: one event a transaction, committed in a worker thread as
        # the services' RPC handlers commit, so the event loop (and the relay on it) stays free.
        written: dict[str, datetime] = {}

        def commit_one() -> dict[str, datetime]:
            with session_scope(engine) as session:
                return event_rows(session, 1)

        async def request() -> None:
            written.update(await asyncio.to_thread(commit_one))
            relay.wake()

        interval = 1.0 / rate
        total = int(rate * seconds)
        requests = []
        begin = time.perf_counter()
        for i in range(total):  # open loop: a request starts on schedule whether or not others finished
            delay = begin + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            requests.append(asyncio.create_task(request()))
        await asyncio.gather(*requests)
        offered = total / (time.perf_counter() - begin)
        await wait_applied(conv_db, 2 * n + 10 + total, timeout=120)
        done = processed_times(conv_db)
        latencies = sorted((done[i] - at).total_seconds() * 1000 for i, at in written.items())
    finally:
        relay_task.cancel()
        consumer.terminate()
        consumer.wait(timeout=10)
        await nc.close()
        engine.dispose()
    return {
        "throughput": throughput,
        "consumer": consumer_rate,
        "offered": offered,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
    }


async def measure(args: argparse.Namespace, work: Path) -> tuple[float, dict[str, float]]:
    with running_nats(work, args.sync) as server:
        baseline = await raw_baseline(server.url, args.events)
        result = await pipeline(server.url, work, args.events, args.rate, args.seconds, args.log_level)
    return baseline, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=1000, help="offered rate for the latency run (events/s)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    parser.add_argument("--log-level", default="WARNING", help="the consumer process's PORTICO_LOG_LEVEL")
    args = parser.parse_args()
    baseline, result = run_in_temp_dir(lambda work: measure(args, work))

    print(f"nats-server sync_interval={args.sync}, consumer log level {args.log_level}, {args.events} events")
    print(f"raw nats-py baseline (publish_async + fetch(500)/ack):  {baseline:10,.0f} msg/s")
    print(f"Portico pipeline (outbox commit -> consumer effect):   {result['throughput']:10,.0f} events/s")
    print(f"ratio pipeline / baseline:                              {result['throughput'] / baseline:10.2f}")
    print(f"consumer process (first to last committed effect):      {result['consumer']:10,.0f} events/s")
    print(f"ratio consumer / baseline:                              {result['consumer'] / baseline:10.2f}")
    print(f"latency at {result['offered']:,.0f} events/s offered: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms")


if __name__ == "__main__":
    main()
