"""Portal pages benchmark: My Conversations as an HTML page against the same list as JSON, same customer, same run.

Prints, from one run, for one customer signed in by SSO with 25 conversations (started through the API):
  * `GET /api/v1/portals/demo/conversations?limit=20` (the JSON list, first page) and
    `GET /portals/demo/conversations` (the page, which shows 20 a page: the same 20 conversations, checked),
    alternated in rounds (JSON then page, then page then JSON, ...) so that whatever else the machine does
    falls on both alike;
  * for each: CPU per request in each process (gateway, auth, conversations, kb, nats-server; the load
    generator apart, not counted in the total), requests per second, latency p50/p90/p99, bytes answered;
  * the ratio page / JSON of the total CPU per request, against the target: the page costs at most 1.5 x the
    JSON (PASS or FAIL is printed, the run itself does not fail on it).

Everything runs as `make run` runs it: nats-server (sync_interval always), auth, conversations and kb as
`python -m services.<name>` processes, the gateway as `python -m services.gateway` (uvicorn, uvloop, httptools,
no access log). Both sides read the session and list the conversations through the same operation; the page
also reads the portal's configuration (three RPCs, kept 2 s by the gateway) and renders the template: that
difference is what is measured. The load generator is this process (keep-alive HTTP/1.1 on uvloop), the same
client for both sides; every answer is checked to be a 200 naming the newest conversation.

    python bench/portal_pages.py [--requests 2000] [--concurrency 8] [--rounds 10] [--json]
                                 [--database-url postgresql://user:pw@host/postgres]
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

# harness first: it puts this checkout on sys.path for the imports below.
from harness import (cookie_header, CpuClock, Databases, keep_alive_load, percentile, Processes,
                     quiet_logging, refuse_cookies, request_bytes, run_in_temp_dir, running_nats, seed_auth, seed_kb,
                     sso_customer, start_portico, wait_outbox_drained)

import httpx  # noqa: E402

from services.gateway.web.routes_conversations import PAGE_SIZE  # noqa: E402
from services.runtime.migrations import upgrade  # noqa: E402

CONVERSATIONS = 25  # more than a page: both answers also carry the cursor of the next one
# The page shows PAGE_SIZE conversations and takes no `limit`: the JSON list is asked for the same number.
JSON_PATH = f"/api/v1/portals/demo/conversations?limit={PAGE_SIZE}"
PAGE_PATH = "/portals/demo/conversations"
SERVICES = ("auth", "conversations", "kb")
TARGET = 1.5
SIDES = ("json", "page")
# A conversation's id where a page links to it; the page must list exactly the JSON list's conversations.
LINK = re.compile(rb"/portals/demo/conversations/([0-9A-HJKMNP-TV-Z]{26})")


async def start_conversations(gateway: httpx.AsyncClient, cookie: str, n: int) -> list[str]:
    """`n` conversations started through the API, as a customer starts them; their ids, oldest first."""
    ids = []
    for i in range(n):
        # Text that autoescaping has work on, as customers write it.
        response = await gateway.post("/api/v1/portals/demo/conversations", headers=cookie_header(cookie), json={
            "subject": f"Invoice {40 + i} shows the old amount & the wrong address",
            "body": f"Hello, the PDF of invoice {40 + i} still says \"Main St. 1\" <old address>; could you "
                    "send a corrected one? Thanks, Dana"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["conversation"]["id"])
    return ids


async def check_same_list(port: int, cookie: str, ids: list[str]) -> dict[str, int]:
    """Both answers list the customer's newest PAGE_SIZE conversations, newest first; bytes of each answer."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, cookies=refuse_cookies()) as c:
        listed = await c.get(JSON_PATH, headers=cookie_header(cookie))
        page = await c.get(PAGE_PATH, headers=cookie_header(cookie), follow_redirects=False)
    assert listed.status_code == 200, listed.text[:300]
    json_ids = [row["id"] for row in listed.json()["conversations"]]
    assert json_ids == ids[::-1][:PAGE_SIZE], "the JSON list is not the customer's conversations, newest first"
    if page.status_code != 200:
        raise SystemExit(f"GET {PAGE_PATH} answered {page.status_code} "
                         f"({page.headers.get('location') or page.text[:200]!r}): the page is not there yet")
    page_ids = list(dict.fromkeys(m.decode() for m in LINK.findall(page.content)))
    assert page_ids == json_ids, f"the page lists {len(page_ids)} conversations, not the JSON list's {len(json_ids)}"
    return {"json": len(listed.content), "page": len(page.content)}


async def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU ms per second each process spends with no request in flight (timers, relays, heartbeats)."""
    clock = CpuClock(pids)
    await asyncio.sleep(seconds)
    return {name: spent * 1000 / seconds for name, spent in clock.spent().items()}


async def measure(args: argparse.Namespace, port: int, pids: dict[str, int], cookie: str,
                  newest: str) -> dict[str, dict[str, object]]:
    """Both sides in alternating rounds; per side CPU ms per request per process, rate and latencies."""
    raw = {"json": request_bytes("GET", port, JSON_PATH, headers=cookie_header(cookie)),
           "page": request_bytes("GET", port, PAGE_PATH, headers=cookie_header(cookie),
                                 accept="text/html,application/xhtml+xml")}
    marker = newest.encode()

    def names_newest(_: int, body: bytes) -> None:
        if marker not in body:
            raise AssertionError(f"an answer without the newest conversation: {body[:300]!r}")

    for side in SIDES:
        await keep_alive_load(port, [raw[side]], args.concurrency, count=args.warmup, check=names_newest)
    cpu = {side: dict.fromkeys(pids, 0.0) for side in SIDES}
    latencies: dict[str, list[float]] = {side: [] for side in SIDES}
    seconds = dict.fromkeys(SIDES, 0.0)
    per_round = max(args.requests // args.rounds, 1)
    for round_ in range(args.rounds):
        for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
            clock = CpuClock(pids)
            started = time.perf_counter()
            _, answered = await keep_alive_load(port, [raw[side]], args.concurrency, count=per_round,
                                                check=names_newest)
            seconds[side] += time.perf_counter() - started
            for name, spent in clock.spent().items():
                cpu[side][name] += spent
            latencies[side] += [ms for _, ms in answered]
    result: dict[str, dict[str, object]] = {}
    for side in SIDES:
        n = len(latencies[side])
        per_request = {name: spent * 1000 / n for name, spent in cpu[side].items()}
        values = latencies[side]
        result[side] = {
            "requests": n, "rate": n / seconds[side], "cpu_ms": per_request,
            "cpu_total_ms": sum(ms for name, ms in per_request.items() if name != "load generator"),
            "p50_ms": statistics.median(values), "p90_ms": percentile(values, 0.90),
            "p99_ms": percentile(values, 0.99)}
    return result


async def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    with (Databases(work, args.database_url) as dbs, running_nats(work, args.sync) as nats_server,
          Processes(work) as processes):
        urls = {service: dbs.url(service) for service in SERVICES}
        demo = seed_auth(urls["auth"])
        seed_kb(urls["kb"], demo.org_id, demo.kb_id)
        upgrade("conversations", urls["conversations"])
        port, _ = await start_portico(processes, work, nats_server.url, urls)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     cookies=refuse_cookies()) as gateway:
            cookie = await sso_customer(gateway, demo.sso_secret, "dana@example.com")
            ids = await start_conversations(gateway, cookie, CONVERSATIONS)
        for service in ("auth", "conversations"):  # the relays publish now, not during the measurement
            await wait_outbox_drained(urls[service], service, processes, timeout=60)
        size = await check_same_list(port, cookie, ids)

        pids = {**processes.pids(), "nats-server": nats_server.process.pid,  # type: ignore[union-attr]
                "load generator": os.getpid()}
        idle = await idle_cpu(pids, 2.0)
        sides = await measure(args, port, pids, cookie, ids[-1])
        processes.check()
    ratio = sides["page"]["cpu_total_ms"] / sides["json"]["cpu_total_ms"]  # type: ignore[operator]
    return {"database": "PostgreSQL" if args.database_url else "SQLite", "conversations": CONVERSATIONS,
            "page_size": PAGE_SIZE, "concurrency": args.concurrency, "rounds": args.rounds,
            "bytes": size, "idle_cpu_ms_per_s": idle, **sides, "ratio_cpu": ratio,
            "ratio_p50": sides["page"]["p50_ms"] / sides["json"]["p50_ms"],  # type: ignore[operator]
            "target": TARGET, "pass": ratio <= TARGET}


def print_table(r: dict[str, object]) -> None:
    j, p = r["json"], r["page"]
    assert isinstance(j, dict) and isinstance(p, dict)
    size, idle = r["bytes"], r["idle_cpu_ms_per_s"]
    assert isinstance(size, dict) and isinstance(idle, dict)
    print(f"{r['database']}; nats-server, gateway, auth, conversations and kb as processes (as make run starts "
          f"them); one customer signed in by SSO with {r['conversations']} conversations, pages of "
          f"{r['page_size']}; {j['requests']:,} requests per side in {r['rounds']} alternating rounds, "
          f"{r['concurrency']} in flight")
    print(f"{'':32}{'JSON list':>12}{'HTML page':>12}{'page/JSON':>11}")

    def row(label: str, a: float, b: float, unit: str = "", digits: int = 2) -> None:
        ratio = f"{b / a:11.2f}" if a else f"{'':>11}"
        print(f"{label:32}{a:>{12 - len(unit)},.{digits}f}{unit}{b:>{12 - len(unit)},.{digits}f}{unit}{ratio}")

    print("CPU per request, ms:")
    for name in ("gateway", *SERVICES, "nats-server"):
        row(f"  {name}", j["cpu_ms"][name], p["cpu_ms"][name])
    row("  total (Portico)", j["cpu_total_ms"], p["cpu_total_ms"])
    row("  load generator (not in total)", j["cpu_ms"]["load generator"], p["cpu_ms"]["load generator"])
    row("requests/s", j["rate"], p["rate"], digits=0)
    for q in ("p50", "p90", "p99"):
        row(f"latency {q}, ms", j[f"{q}_ms"], p[f"{q}_ms"])
    row("bytes answered", size["json"], size["page"], digits=0)
    busy = {name: ms for name, ms in idle.items() if ms >= 0.5}
    print("idle CPU before the load, ms/s: " + (", ".join(f"{n} {ms:.1f}" for n, ms in busy.items()) or "none ≥ 0.5"))
    print(f"ratio page / JSON, total CPU per request: {r['ratio_cpu']:.2f} (target ≤ {r['target']}): "
          f"{'PASS' if r['pass'] else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per side (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of the two sides (default 10)")
    parser.add_argument("--warmup", type=int, default=200, help="requests per side before measuring")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--database-url", help="PostgreSQL server URL: fresh databases are created and dropped")
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    args = parser.parse_args()
    quiet_logging()
    result = run_in_temp_dir(lambda work: run(args, work), use_uvloop=True)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_table(result)


if __name__ == "__main__":
    main()
