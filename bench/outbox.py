"""Outbox relay benchmark: the CPU the relay spends per event, at a low and at a high commit rate.

Events are committed one per transaction through `Service.transaction` (as an RPC handler commits them,
`record_event` in a worker thread) by a real `Service` connected to a real nats-server, and the relay
publishes them to JetStream and marks them published. Each run is done twice on a fresh database, with the
relay running and with it disabled. The relay's CPU is the event loop thread's CPU time with the relay less
without it (the relay and the NATS client run there; the commits run in worker threads) plus the CPU time of
the relay's own thread (its database reads and marks), divided by the events. The whole process's
difference is printed too; it carries the commits' noise.

The baseline, measured in the same run on the same nats-server: raw nats-py `publish_async` of the same
payloads with the same `Nats-Msg-Id` headers, at the same rate (one publish awaited at a time at the low
rate; pipelined at the high rate): the event loop thread's CPU time, less that of the same loop without the
publish. A second baseline, the floor of what nats-py can do for a JetStream publish with its ack: a core
`publish` with a reply subject on a subscription of its own (what the relay does), the ack checked in the
subscription's callback and awaited (one at a time at the low rate; all at once at the high rate), no future per
publish.

    python bench/outbox.py [--events 2000] [--rate 200] [--repeat 3] [--postgres URL] [--sync always]

Prints, for each rate: the relay's CPU per event, the baseline's, their ratio, the floor's, the whole process's difference
per event and nats-server's CPU per event (relay and baseline: re-sends would show there).
"""

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig

# harness first: it puts this checkout on sys.path for the imports below.
from harness import Databases, cpu_seconds, quiet_logging, run_in_temp_dir, running_nats

from contracts.envelope import EventEnvelope, new_id
from contracts.events import UserRegistered
from services.runtime.db import make_engine
from services.runtime.outbox import OutboxRecord, record_event
from services.runtime.service import Service
from services.runtime.settings import Settings

HIGH_RATE_IN_FLIGHT = 4  # transactions awaited at once in the high-rate run (they queue on the write lock)
BASELINE_STREAM = "BENCH_OUTBOX_BASELINE"


def user_registered() -> tuple[UserRegistered, str]:
    user_id = new_id()
    return UserRegistered(user_id=user_id, email=f"{user_id.lower()}@example.com", kind="customer",
                          method="email", portal="demo"), user_id


def commit_one(session, _: int) -> None:  # type: ignore[no-untyped-def]
    """The transaction every run commits: one event, as a first login's account creation records it."""
    event, user_id = user_registered()
    record_event(session, event, org_id="org_bench", aggregate_id=user_id, aggregate_version=1)


async def paced(n: int, rate: float | None, step, in_flight: int = 1) -> float:  # type: ignore[no-untyped-def]
    """`await step(i)` for i < n: on an open-loop schedule of `rate` per second, one at a time, or (rate None)
    back to back with `in_flight` at once; returns the achieved rate (per second)."""
    started = time.perf_counter()
    if rate is None:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                await step(i)

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    else:
        interval = 1.0 / rate
        for i in range(n):
            delay = started + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await step(i)
    return n / (time.perf_counter() - started)


async def portico_run(nats_url: str, database_url: str, n: int, rate: float | None,
                      relay: bool, server_pid: int) -> dict[str, float]:
    """Commit `n` events through a real Service; returns CPU seconds of the process, of the event loop thread
    and of the relay's thread, nats-server's CPU seconds and the achieved rate. With `relay`, they include
    publishing every event and marking it published."""
    engine = make_engine(database_url)
    OutboxRecord.__table__.create(engine)  # type: ignore[attr-defined]
    engine.dispose()
    settings = Settings(env="dev", nats_url=nats_url, log_level="WARNING")
    service = Service("auth", settings, database_url=database_url, relay_enabled=relay)
    await service.start()
    try:
        await service.transaction(commit_one, -1)  # warm: the first transaction opens the connection
        if relay:
            while service.relay.published_total < 1:
                await asyncio.sleep(0.01)
        relay_thread = await relay_thread_time(service)
        cpu, loop, server = time.process_time(), time.thread_time(), cpu_seconds(server_pid)
        achieved = await paced(n, rate, lambda i: service.transaction(commit_one, i), HIGH_RATE_IN_FLIGHT)
        if relay:
            deadline = time.monotonic() + 120
            while service.relay.published_total < n + 1:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"relay marked {service.relay.published_total} of {n + 1} events")
                await asyncio.sleep(0.005)
        return {"cpu": time.process_time() - cpu, "loop": time.thread_time() - loop,
                "relay_thread": await relay_thread_time(service) - relay_thread,
                "server": cpu_seconds(server_pid) - server, "rate": achieved}
    finally:
        await service.stop()


async def relay_thread_time(service: Service) -> float:
    """CPU seconds so far of the relay's own thread (its database reads and marks run there)."""
    return await asyncio.get_running_loop().run_in_executor(service.relay._executor, time.thread_time)


async def baseline_run(nats_url: str, payloads: list[tuple[str, bytes]], rate: float | None,
                       server_pid: int) -> dict[str, float]:
    """Raw nats-py: publish the payloads with their Nats-Msg-Id; CPU seconds less the bare pacing loop's."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name=BASELINE_STREAM, subjects=["bench.outbox.>"],
                                         storage=StorageType.FILE, duplicate_window=120.0))
        await js.purge_stream(BASELINE_STREAM)
        await js.publish("bench.outbox.warm", b"{}")
        run = new_id()

        async def nothing(_: int) -> None:
            pass

        idle = time.thread_time()
        await paced(len(payloads), rate, nothing)
        idle = time.thread_time() - idle

        cpu, server = time.thread_time(), cpu_seconds(server_pid)
        if rate is None:
            for event_id, payload in payloads:
                await js.publish_async("bench.outbox.e", payload, headers={"Nats-Msg-Id": run + event_id})
            await js.publish_async_completed()
            achieved = 0.0
        else:
            async def publish(i: int) -> None:
                event_id, payload = payloads[i]
                await (await js.publish_async("bench.outbox.e", payload, headers={"Nats-Msg-Id": run + event_id}))

            achieved = await paced(len(payloads), rate, publish)
            cpu += idle  # the pacing loop's own CPU is not the publish's
        return {"cpu": time.thread_time() - cpu, "server": cpu_seconds(server_pid) - server, "rate": achieved}
    finally:
        await js.delete_stream(BASELINE_STREAM)
        await nc.close()


async def floor_run(nats_url: str, payloads: list[tuple[str, bytes]], rate: float | None) -> float:
    """Raw nats-py, the least it takes: core `publish` with a reply subject on one subscription whose callback
    checks each ack; the event loop thread's CPU seconds less the bare pacing loop's."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    try:
        await js.add_stream(StreamConfig(name=BASELINE_STREAM, subjects=["bench.outbox.>"],
                                         storage=StorageType.FILE, duplicate_window=120.0))
        await js.purge_stream(BASELINE_STREAM)
        prefix = nc.new_inbox() + "."
        state: dict[str, Any] = {"left": 0, "waiter": None}

        async def answered(msg: Msg) -> None:
            if msg.headers or b'"seq"' not in msg.data:
                raise RuntimeError(f"publish failed: {msg.data[:100]!r}")
            state["left"] -= 1
            if not state["left"] and not state["waiter"].done():
                state["waiter"].set_result(None)

        await nc.subscribe(prefix + "*", cb=answered)
        run = new_id()

        async def publish(numbers: range) -> None:
            state["left"], state["waiter"] = len(numbers), loop.create_future()
            for i in numbers:
                event_id, payload = payloads[i]
                await nc.publish("bench.outbox.e", payload, reply=f"{prefix}{i}", headers={"Nats-Msg-Id": run + event_id})
            await asyncio.wait_for(state["waiter"], 30)

        async def nothing(_: int) -> None:
            pass

        idle = time.thread_time()
        if rate is not None:
            await paced(len(payloads), rate, nothing)
        idle = time.thread_time() - idle
        cpu = time.thread_time()
        if rate is None:
            await publish(range(len(payloads)))
        else:
            await paced(len(payloads), rate, lambda i: publish(range(i, i + 1)))
        return time.thread_time() - cpu - idle
    finally:
        await js.delete_stream(BASELINE_STREAM)
        await nc.close()


def sample_payloads(n: int) -> list[tuple[str, bytes]]:
    """Envelopes as `record_event` writes them: (event id, JSON bytes)."""
    out = []
    for _ in range(n):
        event, user_id = user_registered()
        envelope = EventEnvelope.wrap(event, org_id="org_bench", aggregate_id=user_id, aggregate_version=1,
                                      correlation_id=new_id())
        out.append((envelope.id, envelope.model_dump_json().encode()))
    return out


async def measure(args: argparse.Namespace, work: Path) -> list[dict[str, float | str]]:
    results: list[dict[str, float | str]] = []
    with running_nats(work, args.sync) as server, Databases(work, args.postgres) as databases:
        assert server.process is not None
        pid = server.process.pid
        payloads = sample_payloads(args.events)
        for kind, (label, rate) in enumerate(((f"{args.rate:g} events/s", float(args.rate)),
                                              ("as fast as committed", None))):
            on, off, base, server_on, server_base, achieved, process, floor = [], [], [], [], [], [], [], []
            for attempt in range(args.repeat):
                with_relay = await portico_run(server.url, databases.url(f"on{kind}{attempt}"), args.events, rate,
                                               True, pid)
                without = await portico_run(server.url, databases.url(f"off{kind}{attempt}"), args.events, rate,
                                            False, pid)
                raw = await baseline_run(server.url, payloads, rate, pid)
                floor.append(await floor_run(server.url, payloads, rate))
                on.append(with_relay["loop"] + with_relay["relay_thread"])
                off.append(without["loop"] + without["relay_thread"])
                process.append(with_relay["cpu"] - without["cpu"])
                base.append(raw["cpu"])
                server_on.append(with_relay["server"])
                server_base.append(raw["server"])
                achieved.append(with_relay["rate"])
            n = args.events
            relay = statistics.median(a - b for a, b in zip(on, off)) / n
            baseline = statistics.median(base) / n
            results.append({"label": label, "relay": relay, "baseline": baseline, "floor": statistics.median(floor) / n,
                            "process": statistics.median(process) / n, "rate": statistics.median(achieved),
                            "server": statistics.median(server_on) / n,
                            "server_baseline": statistics.median(server_base) / n})
            databases.drop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="events committed in each run")
    parser.add_argument("--rate", type=float, default=200, help="the low rate (events/s, one per transaction)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind; the medians are printed")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server URL (default: SQLite files)")
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    args = parser.parse_args()
    quiet_logging()
    results = run_in_temp_dir(lambda work: measure(args, work), use_uvloop=True)

    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"outbox relay: {database}, nats-server sync_interval={args.sync}, {args.events} events a run, "
          f"one per transaction, median of {args.repeat} runs")
    for r in results:
        print(f"relay CPU per event at {r['label']} ({r['rate']:,.0f}/s):  {r['relay'] * 1000:8.3f} ms   "
              f"raw nats-py baseline: {r['baseline'] * 1000:.3f} ms   "
              f"ratio relay / baseline: {r['relay'] / max(r['baseline'], 1e-9):6.2f}")
        print(f"  raw nats-py floor (core publish, acks on a reply subscription): {r['floor'] * 1000:.3f} ms   "
              f"ratio relay / floor: {r['relay'] / max(r['floor'], 1e-9):6.2f}")
        print(f"  whole process, relay on minus off: {r['process'] * 1000:.3f} ms per event   "
              f"nats-server CPU per event: relay {r['server'] * 1000:.3f} ms, "
              f"baseline {r['server_baseline'] * 1000:.3f} ms")


if __name__ == "__main__":
    main()
