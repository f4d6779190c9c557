"""Gateway benchmark: the gateway process's own CPU per request, beside a bare FastAPI app served the same way.

Prints, from one run, for each route (one after the other, the bare app's counterpart first):
  * `health`:  `GET /healthz` (no session, no service call);
  * `session`: `GET /api/v1/session` with a session cookie (the session read from the `sessions` bucket, no
    service call);
  * `list`:    `GET /api/v1/portals/demo/conversations` with a session cookie (session + one request/reply to
    the conversations service);
  * `post`:    `POST /api/v1/portals/demo/conversations/{id}/messages` (JSON) with a session cookie;
  * `answer`:  `POST /api/v1/agent/conversations/{id}/messages` (JSON) with the demo org's API key (an agent's
    answer from a script or an integration: the key's check, then the same service call as a post);
the CPU milliseconds per request of every process (gateway, auth, conversations, nats-server, the load
generator), requests/s, p50/p99 latency, and the gateway's CPU and throughput as a ratio of the bare app's.
The bare app answers each route with a constant JSON body of the same shape (the POST parses its JSON body
into a model): what the gateway spends beyond it is routing, middleware, the session check, the service call
and its serialisation.

Everything runs as `make run` runs it: nats-server (sync_interval always), auth and conversations as
`python -m services.<name>` processes, the gateway as `python -m services.gateway` (uvicorn, uvloop,
httptools, no access log). The bare app is this file started with `--bare-server`, through the same
`uvicorn.run` call (`harness.serve_like_gateway`). The load generator is this process: a minimal keep-alive
HTTP/1.1 client on uvloop (`harness.keep_alive_load`), the same for both sides.

    python bench/gateway.py [--concurrency 16] [--seconds 5] [--warmup 1] [--routes health,session,list,post,answer]
                            [--database-url postgresql://user:pw@host/postgres] [--py-spy DIR]

`--py-spy DIR` also records the gateway and auth during each route's measured load with py-spy (raw collapsed
stacks, `DIR/<route>-<process>.txt`), to see where the CPU per request goes.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import (BARE_HEALTH, BARE_LIST, BARE_POST, BARE_SESSION, bare_server_command, CpuClock,
                     Databases, keep_alive_load, percentile, Processes, quiet_logging, refuse_cookies,
                     request_bytes, run_in_temp_dir, running_nats, seed_auth, start_portico, wait_http)

ROUTES = ("health", "session", "list", "post", "answer")
BODY = {"body": "Hello again: invoice 42 still shows the old amount, and the PDF has the wrong address."}
ANSWER = {"body": "Thanks for waiting: the invoice is corrected, and a new PDF is on its way to you."}
API_KEY = "bench-api-key-0123456789"  # seed_auth's org.admin key: the agent's answers are sent with it


import httpx  # noqa: E402
import jwt  # noqa: E402

from contracts.sessions import SESSION_COOKIE  # noqa: E402
from services.runtime.migrations import upgrade  # noqa: E402
from services.runtime.nats import free_port  # noqa: E402

LIST_PATH = "/api/v1/portals/demo/conversations"
AGENT_POST_PATH = "/api/v1/agent/conversations/{id}/messages"


async def sso_cookie(gateway: httpx.AsyncClient, secret: str, email: str) -> str:
    token = jwt.encode({"email": email, "iat": int(time.time()), "displayName": email.split("@")[0]}, secret,
                       algorithm="HS256")
    response = await gateway.post("/api/v1/portals/demo/session/sso", json={"token": token})
    assert response.status_code == 200, response.text
    return response.cookies[SESSION_COOKIE]


def requests_for(route: str, port: int, bare_port: int, cookie: str,
                 pool: list[str]) -> tuple[list[bytes], list[bytes], int]:
    """(Portico's requests, the bare app's requests, the expected status) of a route."""
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    body = json.dumps(BODY).encode()
    if route == "health":
        return [request_bytes("GET", port, "/healthz")], [request_bytes("GET", bare_port, BARE_HEALTH)], 200
    if route == "session":
        return ([request_bytes("GET", port, "/api/v1/session", headers=headers)],
                [request_bytes("GET", bare_port, BARE_SESSION, headers=headers)], 200)
    if route == "list":
        return ([request_bytes("GET", port, LIST_PATH, headers=headers)],
                [request_bytes("GET", bare_port, f"{BARE_LIST}?limit=25", headers=headers)], 200)
    if route == "answer":
        key, answer = {"Authorization": f"Bearer {API_KEY}"}, json.dumps(ANSWER).encode()
        return ([request_bytes("POST", port, AGENT_POST_PATH.format(id=cid), headers=key, body=answer) for cid in pool],
                [request_bytes("POST", bare_port, BARE_POST.format(id=cid), headers=key, body=answer)
                 for cid in pool], 201)
    return ([request_bytes("POST", port, f"{LIST_PATH}/{cid}/messages", headers=headers, body=body) for cid in pool],
            [request_bytes("POST", bare_port, BARE_POST.format(id=cid), headers=headers, body=body)
             for cid in pool], 201)


def py_spy(pids: dict[str, int], route: str, args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each of `pids` for the measured load (`--py-spy`), else nothing."""
    if not args.py_spy:
        return []
    Path(args.py_spy).mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    return [subprocess.Popen([str(spy), "record", "-p", str(pid), "-d", str(max(1, round(args.seconds))), "-r", "250",
                              "-f", "raw", "-o", str(Path(args.py_spy) / f"{route}-{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


async def measure(port: int, requests: list[bytes], expect: int, pids: dict[str, int],
                  args: argparse.Namespace, spied: dict[str, int] | None = None, route: str = "") -> dict[str, object]:
    """Warm-up, then `args.seconds` of load; CPU ms per request of each of `pids`, requests/s, p50/p99 ms.
    `spied`: processes py-spy records meanwhile (`--py-spy`)."""
    await keep_alive_load(port, requests, args.concurrency, seconds=args.warmup, expect=expect)
    spies = py_spy(spied or {}, route, args)
    cpu = CpuClock(pids)
    rate, answers = await keep_alive_load(port, requests, args.concurrency, seconds=args.seconds, expect=expect)
    spent = cpu.spent()
    for spy in spies:
        spy.wait()
    latencies = [ms for _, ms in answers]
    return {"cpu": {name: seconds * 1000 / len(answers) for name, seconds in spent.items()}, "rate": rate,
            "n": len(answers), "p50": statistics.median(latencies), "p99": percentile(latencies, 0.99)}


async def run(args: argparse.Namespace, work: Path) -> dict[str, dict[str, dict[str, object]]]:
    results: dict[str, dict[str, dict[str, object]]] = {}
    with (Databases(work, args.database_url) as dbs, running_nats(work, args.sync) as nats_server,
          Processes(work) as processes):
        auth_db, conv_db = dbs.url("auth"), dbs.url("conversations")
        secret = seed_auth(auth_db).sso_secret
        upgrade("conversations", conv_db)
        port, env = await start_portico(processes, work, nats_server.url, {"auth": auth_db, "conversations": conv_db})
        bare_port = free_port()
        processes.start("bare", bare_server_command(bare_port), env)
        await wait_http(bare_port, BARE_HEALTH, processes)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     cookies=refuse_cookies()) as gateway:
            cookie = await sso_cookie(gateway, secret, "customer@example.com")
            pool = []
            for i in range(args.pool):
                response = await gateway.post(LIST_PATH, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
                                              json={"subject": f"Invoice question {i}", "body": "Hello ..."})
                assert response.status_code == 201, response.text
                pool.append(response.json()["conversation"]["id"])

        me = os.getpid()
        nats_pid = nats_server.process.pid  # type: ignore[union-attr]
        for route in args.routes:
            portico_requests, bare_requests, expect = requests_for(route, port, bare_port, cookie, pool)
            bare = await measure(bare_port, bare_requests, expect, {"bare": processes.pids()["bare"],
                                                                    "load generator": me}, args)
            services = processes.pids(leave_out="bare")
            portico = await measure(port, portico_requests, expect,
                                    {**services, "nats-server": nats_pid, "load generator": me}, args,
                                    spied={name: services[name] for name in ("gateway", "auth")}, route=route)
            processes.check()
            results[route] = {"bare": bare, "portico": portico}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured load per route and side (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="load before each measurement (default 1 s)")
    parser.add_argument("--pool", type=int, default=16, help="conversations the posts are spread over (default 16)")
    parser.add_argument("--routes", type=lambda text: [r for r in text.split(",") if r], default=list(ROUTES),
                        help=f"comma-separated, of {','.join(ROUTES)} (default all)")
    parser.add_argument("--database-url", help="PostgreSQL server URL: fresh databases are created and dropped")
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    parser.add_argument("--py-spy", metavar="DIR", help="record the gateway and auth with py-spy into DIR")
    args = parser.parse_args()
    unknown = set(args.routes) - set(ROUTES)
    if unknown:
        parser.error(f"unknown routes: {', '.join(sorted(unknown))}")
    quiet_logging()
    results = run_in_temp_dir(lambda work: run(args, work), use_uvloop=True)

    print(f"{'PostgreSQL' if args.database_url else 'SQLite'}, nats-server sync_interval={args.sync}; gateway, auth "
          f"and conversations as processes (uvicorn uvloop/httptools, no access log); bare FastAPI app served the "
          f"same way; load generator: one process, keep-alive HTTP/1.1, {args.concurrency} in flight, "
          f"{args.seconds:g} s per route and side after {args.warmup:g} s warm-up")
    for route, r in results.items():
        bare, portico = r["bare"], r["portico"]
        bare_cpu, cpu = bare["cpu"], portico["cpu"]
        assert isinstance(bare_cpu, dict) and isinstance(cpu, dict)
        print(f"{route}:")
        print(f"  bare FastAPI: {bare['rate']:9,.0f} req/s  p50 {bare['p50']:6.2f} ms  p99 {bare['p99']:6.2f} ms  "
              f"CPU/request: bare {bare_cpu['bare']:.3f} ms")
        print(f"  Portico:      {portico['rate']:9,.0f} req/s  p50 {portico['p50']:6.2f} ms  "
              f"p99 {portico['p99']:6.2f} ms  CPU/request: "
              + ", ".join(f"{name} {ms:.3f} ms" for name, ms in cpu.items()))
        print(f"  gateway CPU/request {cpu['gateway']:.3f} ms = {cpu['gateway'] / bare_cpu['bare']:.2f}x bare "
              f"(+{cpu['gateway'] - bare_cpu['bare']:.3f} ms); throughput ratio Portico/bare "
              f"{portico['rate'] / bare['rate']:.3f}")


if __name__ == "__main__":
    main()
