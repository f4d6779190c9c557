"""Memory benchmark: each Portico process's resident memory idle after start and under the message-post load,
against the targets (issue 16: idle <= 120 MB RSS per service process, <= 200 MB under the post benchmark).

Everything runs as `make run` runs it: nats-server (sync_interval always), auth, conversations, notifications
and kb as `python -m services.<name>` processes, the gateway as `python -m services.gateway` (uvicorn, uvloop,
httptools, no access log), on SQLite files (or fresh PostgreSQL databases with --database-url), auth and kb
seeded with the demo portal. Two baselines are measured in the same run:
  * "bare FastAPI": this file started with `--bare-server`, a POST route parsing a small JSON body, served by
    the same `uvicorn.run` call as the gateway (`harness.serve_like_gateway`), under the same post load;
  * "bare python": the same interpreter importing nothing (`python -c "input()"`, the site module only).

Read from /proc/PID/status, in MiB (1 MiB = 1,048,576 bytes; the targets' "MB" are read as MiB):
  * idle RSS: VmRSS once every service is ready, the outboxes drained and --settle seconds passed;
  * start peak: VmHWM at that moment (the highest RSS the process reached while starting);
  * load peak: the highest RSS under the load (until conversations' outbox has published the posts' events):
    VmHWM after it, first reset to the current RSS (`5` into /proc/PID/clear_refs) where the kernel allows it,
    and the highest VmRSS sampled every 50 ms;
  * after: VmRSS --settle seconds after the load (what the process keeps).
The load: an SSO customer posting `POST /api/v1/portals/demo/conversations/{id}/messages` (JSON) through the
gateway, --concurrency in flight for --seconds, as bench/conversations.py posts them; conversations' relay
publishes the events and notifications consumes them meanwhile.

    python bench/memory.py [--seconds 10] [--concurrency 16] [--pool 16] [--settle 2]
                           [--database-url postgresql://user:pw@host/postgres] [--strict]

Exits 0 whatever the figures (--strict: 1 if a service process is over a target).
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from harness import (BARE_HEALTH, BARE_POST, bare_server_command, cookie_header, Databases, keep_alive_load,
                     Processes, quiet_logging, refuse_cookies, request_bytes, reset_rss_peak, rss_kib,
                     run_in_temp_dir, running_nats, seed_auth, seed_kb, sso_customer, start_conversations,
                     start_portico, wait_http, wait_outbox_drained)

import subprocess  # noqa: E402

import httpx  # noqa: E402

from services.runtime.migrations import upgrade  # noqa: E402
from services.runtime.nats import free_port  # noqa: E402

SERVICES = ("auth", "conversations", "notifications", "kb")
TARGET_IDLE_MIB = 120
TARGET_LOAD_MIB = 200
BODY = {"body": "Hello again: invoice 42 still shows the old amount, and the PDF has the wrong address."}
POST_PATH = "/api/v1/portals/demo/conversations/{id}/messages"
SAMPLE_EVERY = 0.05  # seconds between VmRSS samples under load


class PeakSampler:
    """The highest VmRSS (KiB) of each process, sampled every SAMPLE_EVERY seconds while running."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: rss_kib(pid)[0] for name, pid in pids.items()}
        self.task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_kib(pid)[0])
            await asyncio.sleep(SAMPLE_EVERY)

    def __enter__(self) -> "PeakSampler":
        self.task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        for name, pid in self.pids.items():  # one last read: the end of the load
            self.peak[name] = max(self.peak[name], rss_kib(pid)[0])


async def load_peaks(pids: dict[str, int], load: Coroutine[Any, Any, None]) -> dict[str, int]:
    """Run `load`; each process's highest RSS meanwhile, KiB."""
    reset = {name: reset_rss_peak(pid) for name, pid in pids.items()}
    with PeakSampler(pids) as sampler:
        await load
    peaks = {}
    for name, pid in pids.items():
        hwm = rss_kib(pid)[1]
        peaks[name] = max(hwm, sampler.peak[name]) if reset[name] else sampler.peak[name]
    return peaks


async def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    with (Databases(work, args.database_url) as dbs, running_nats(work, args.sync) as nats_server,
          Processes(work) as processes):
        urls = {service: dbs.url(service) for service in SERVICES}
        demo = seed_auth(urls["auth"])
        seed_kb(urls["kb"], demo.org_id, demo.kb_id)
        for service in ("conversations", "notifications"):
            upgrade(service, urls[service])
        # notifications listens for replies by SMTP: a free port, not the default one another run may hold.
        os.environ["PORTICO_INBOUND_SMTP_PORT"] = str(free_port())
        gateway_port, env = await start_portico(processes, work, nats_server.url, urls)
        bare_port = free_port()
        processes.start("bare FastAPI", bare_server_command(bare_port), env)
        processes.start("bare python", ["-c", "input()"], env, stdin=subprocess.PIPE)
        await wait_http(bare_port, BARE_HEALTH, processes)
        await wait_outbox_drained(urls["auth"], "auth", processes, timeout=60)
        await asyncio.sleep(args.settle)
        processes.check()

        pids = {**processes.pids(), "nats-server": nats_server.process.pid}  # type: ignore[union-attr]
        idle = {name: rss_kib(pid) for name, pid in pids.items()}

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=30,
                                     cookies=refuse_cookies()) as gateway:
            cookie = await sso_customer(gateway, demo.sso_secret, "poster@example.com")
            pool = await start_conversations(gateway, cookie, args.pool)
        body = json.dumps(BODY).encode()
        bare_posts = [request_bytes("POST", bare_port, BARE_POST.format(id=cid), headers=cookie_header(cookie),
                                    body=body) for cid in pool]
        portico_posts = [request_bytes("POST", gateway_port, POST_PATH.format(id=cid),
                                       headers=cookie_header(cookie), body=body) for cid in pool]

        bare_pids = {name: pid for name, pid in pids.items() if name.startswith("bare")}
        portico_pids = {name: pid for name, pid in pids.items() if not name.startswith("bare")}
        results: dict[str, object] = {}

        async def post(side: str, port: int, requests: list[bytes]) -> None:
            rate, done = await keep_alive_load(port, requests, args.concurrency, seconds=args.seconds, expect=201)
            results.update({f"{side}rate": rate, f"{side}posted": len(done)})
            if port == gateway_port:  # the events of the posts are published (and consumed) within the load
                results["drain_seconds"] = await wait_outbox_drained(urls["conversations"], "conversations",
                                                                     processes, timeout=120)

        peaks = await load_peaks(bare_pids, post("bare_", bare_port, bare_posts))
        peaks.update(await load_peaks(portico_pids, post("", gateway_port, portico_posts)))
        processes.check()
        await asyncio.sleep(args.settle)
        after = {name: rss_kib(pid)[0] for name, pid in pids.items()}
        processes.check()
    return {"database": "PostgreSQL" if args.database_url else "SQLite", "idle": idle, "peaks": peaks,
            "after": after, **results}


def mib(kib: int) -> float:
    return kib / 1024


def print_table(args: argparse.Namespace, r: dict[str, object]) -> bool:
    """The table; True if every service process is within both targets."""
    idle, peaks, after = r["idle"], r["peaks"], r["after"]
    assert isinstance(idle, dict) and isinstance(peaks, dict) and isinstance(after, dict)
    print(f"{r['database']}; nats-server, gateway, auth, conversations, notifications and kb as processes (as make "
          f"run starts them), demo portal seeded")
    print(f"load: SSO customer posting messages, {args.concurrency} in flight, {args.seconds:g} s over {args.pool} "
          f"conversations: {r['posted']:,} posted ({r['rate']:,.0f} msg/s; events published {r['drain_seconds']:.1f} s "
          f"after); the bare FastAPI POST the same "
          f"({r['bare_posted']:,} answered, {r['bare_rate']:,.0f} req/s)")
    print(f"RSS in MiB; targets per service process: idle <= {TARGET_IDLE_MIB}, under load <= {TARGET_LOAD_MIB}")
    print(f"{'process':<16}{'idle RSS':>10}{'start peak':>12}{'load peak':>11}{'after':>9}"
          f"{'idle/bare':>11}  verdict")
    bare_idle = idle["bare FastAPI"][0]
    ok = True
    for name in ("gateway", *SERVICES, "nats-server", "bare FastAPI", "bare python"):
        rss, hwm = idle[name]
        line = (f"{name:<16}{mib(rss):10.1f}{mib(hwm):12.1f}{mib(peaks[name]):11.1f}{mib(after[name]):9.1f}"
                f"{rss / bare_idle:11.2f}  ")
        if name in ("gateway", *SERVICES):
            over = [f"idle over {TARGET_IDLE_MIB}"] if mib(rss) > TARGET_IDLE_MIB else []
            over += [f"load over {TARGET_LOAD_MIB}"] if mib(peaks[name]) > TARGET_LOAD_MIB else []
            ok = ok and not over
            line += "OVER: " + ", ".join(over) if over else "ok"
        else:
            line += "(baseline)" if name.startswith("bare") else "(not a Python service)"
        print(line)
    print(f"all service processes within targets: {'yes' if ok else 'no'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="posting time per side (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight while posting")
    parser.add_argument("--pool", type=int, default=16, help="conversations the messages are spread over")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds waited after start and after the load before reading RSS (default 2)")
    parser.add_argument("--database-url", help="PostgreSQL server URL: fresh databases are created and dropped")
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a service process is over a target")
    args = parser.parse_args()
    quiet_logging()
    r = run_in_temp_dir(lambda work: run(args, work), use_uvloop=True)
    ok = print_table(args, r)
    if args.strict and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
