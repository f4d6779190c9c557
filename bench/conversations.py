"""Conversations benchmark: customers posting messages and starting conversations, agents answering, and My
Conversations' list at 10 and 10,000 conversations.

Prints, from one run:
  * messages posted per second by a customer signed in by SSO:
    `POST /api/v1/portals/demo/conversations/{id}/messages` (JSON) through the real gateway and the real
    conversations service, at a fixed concurrency, beside a bare FastAPI endpoint (a POST route that parses
    a small JSON body and answers JSON) served by the same uvicorn config, and the ratio of the two;
  * for each write a customer or an agent makes (a customer's message, a new conversation
    `POST /api/v1/portals/demo/conversations`, an agent's answer `POST /api/v1/agent/conversations/{id}/messages`
    with the demo org's API key): the CPU each process spends per request (gateway, auth, conversations,
    nats-server, and the load generator), their sum on the request path (every process but the load
    generator), the bare endpoint's CPU per request measured in the same run, and the ratio of the two.
    A process's figure holds all it does meanwhile (conversations' includes its outbox relay publishing the
    events; no other service consumes them here);
  * the latency of `GET /api/v1/portals/demo/conversations` (first page, 25) for a customer with 10
    conversations and one with 10,000 (p50/p99), beside the bare endpoint's GET, and the ratio
    10,000 / 10, which must stay near 1: the list reads one index range whatever the customer has.

Everything runs as `make run` runs it: nats-server (sync_interval always), auth and conversations as
`python -m services.<name>` processes, the gateway as `python -m services.gateway` (uvicorn, uvloop,
httptools, no access log). The bare endpoint is this file started with `--bare-server`, through the same
`uvicorn.run` call. The load generator is this process: a minimal keep-alive HTTP/1.1 client on uvloop,
the same for both sides, so that the client is not the limit of either. The 10,000 conversations are
written by the conversations service's own functions (`store.create_conversation` + `add_message`, the
rows `start_conversation` writes), 500 a transaction, into the database the running service reads.

    python bench/conversations.py [--concurrency 16] [--seconds 10 | --messages N] [--conversations 10000]
                                  [--samples 400] [--database-url postgresql://user:pw@host/postgres]
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from harness import (BARE_LIST, BARE_POST, bare_server_command, Connection, cookie_header, CpuClock,
                     Databases, keep_alive_load, percentile, Processes, quiet_logging, refuse_cookies,
                     request_bytes, run_in_temp_dir, running_nats, seed_auth, start_conversations,
                     start_portico, wait_http, wait_outbox_drained)



import httpx  # noqa: E402
import jwt  # noqa: E402

from contracts.conversations import Viewer  # noqa: E402
from contracts.sessions import SESSION_COOKIE, session_key  # noqa: E402
from services.conversations import store  # noqa: E402
from services.runtime.db import make_engine, session_scope  # noqa: E402
from services.runtime.migrations import upgrade  # noqa: E402
from services.runtime.nats import free_port  # noqa: E402
from tests.helpers import rows  # noqa: E402

BODY = {"body": "Hello again: invoice 42 still shows the old amount, and the PDF has the wrong address."}
SEED_BATCH = 500
LIST_PATH = "/api/v1/portals/demo/conversations"
POST_PATH = "/api/v1/portals/demo/conversations/{id}/messages"
AGENT_POST_PATH = "/api/v1/agent/conversations/{id}/messages"
ANSWER = {"body": "Thanks for waiting: the invoice is corrected, and a new PDF is on its way to you."}
API_KEY = "bench-api-key-0123456789"  # seed_auth's org.admin key: the agent's answers are sent with it
REQUEST_PATH = ("gateway", "auth", "conversations", "nats-server")  # every process a request goes through
WARMUP_SECONDS = 1.5


# -- customers -------------------------------------------------------------------------------------------

async def sso_customer(gateway: httpx.AsyncClient, secret: str, email: str, auth_db: str) -> tuple[str, Viewer]:
    """Sign in by SSO through the gateway; the session token and the Viewer the gateway builds from it."""
    token = jwt.encode({"email": email, "iat": int(time.time()), "displayName": email.split("@")[0]}, secret,
                       algorithm="HS256")
    response = await gateway.post("/api/v1/portals/demo/session/sso", json={"token": token})
    assert response.status_code == 200, response.text
    cookie = response.cookies[SESSION_COOKIE]
    session = (await gateway.get("/api/v1/session", headers=cookie_header(cookie))).json()
    org_id = rows(auth_db, "SELECT org_id FROM users WHERE id = :id", id=session["user_id"])[0][0]
    return cookie, Viewer(user_id=session["user_id"], org_id=org_id, portal=session["portal"], kind=session["kind"],
                          method=session["method"], session_key=session_key(cookie), email=session["email"],
                          display_name=session["display_name"])


def seed_conversations(conv_db: str, viewer: Viewer, n: int) -> float:
    """`n` conversations with their first message, as `start_conversation` writes them; seconds taken."""
    engine = make_engine(conv_db)
    started = time.perf_counter()
    try:
        for offset in range(0, n, SEED_BATCH):
            with session_scope(engine) as session:
                store.portal_open(session, viewer)
                store.remember_customer(session, user_id=viewer.user_id, org_id=viewer.org_id, email=viewer.email,
                                        display_name=viewer.display_name, kind=viewer.kind)
                for i in range(offset, min(offset + SEED_BATCH, n)):
                    conversation = store.create_conversation(
                        session, org_id=viewer.org_id, portal=viewer.portal, customer_id=viewer.user_id,
                        channel="portal", subject=f"Seeded question {i}", viewers=store.viewers_of(viewer))
                    store.add_message(session, conversation, author=store.Author(viewer.user_id, "customer"),
                                      body=f"Hello, this is seeded conversation {i}.", channel="portal")
    finally:
        engine.dispose()
    return time.perf_counter() - started


# -- the run ---------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    result: dict[str, object] = {}
    with (Databases(work, args.database_url) as dbs, running_nats(work, args.sync) as nats_server,
          Processes(work) as processes):
        auth_db, conv_db = dbs.url("auth"), dbs.url("conversations")
        secret = seed_auth(auth_db).sso_secret
        upgrade("conversations", conv_db)

        gateway_port, env = await start_portico(processes, work, nats_server.url,
                                                {"auth": auth_db, "conversations": conv_db})
        bare_port = free_port()
        processes.start("bare", bare_server_command(bare_port), env)
        await wait_http(bare_port, BARE_LIST, processes)

        # The client keeps no cookie: each request names its customer's session.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=30,
                                     cookies=refuse_cookies()) as gateway:
            poster_cookie, poster = await sso_customer(gateway, secret, "poster@example.com", auth_db)
            few_cookie, few = await sso_customer(gateway, secret, "few@example.com", auth_db)
            many_cookie, many = await sso_customer(gateway, secret, "many@example.com", auth_db)
            pool = await start_conversations(gateway, poster_cookie, args.pool)

        # 1. Messages posted per second, bare endpoint first, then Portico, identical load.
        body = json.dumps(BODY).encode()
        bare_posts = [request_bytes("POST", bare_port, BARE_POST.format(id=cid), headers=cookie_header(poster_cookie),
                                    body=body) for cid in pool]
        portico_posts = [request_bytes("POST", gateway_port, POST_PATH.format(id=cid),
                                       headers=cookie_header(poster_cookie), body=body) for cid in pool]
        seconds = None if args.messages else args.seconds
        await keep_alive_load(bare_port, bare_posts, args.concurrency, seconds=WARMUP_SECONDS, expect=201)
        bare_cpu = CpuClock({"bare": processes.pids()["bare"]})
        bare_rate, bare = await keep_alive_load(bare_port, bare_posts, args.concurrency, seconds=seconds,
                                                count=args.messages, expect=201)
        result["bare_cpu"] = bare_cpu.spent()["bare"] * 1000 / len(bare)
        _, warm = await keep_alive_load(gateway_port, portico_posts, args.concurrency, seconds=WARMUP_SECONDS,
                                        expect=201)
        nats_pid = nats_server.process.pid  # type: ignore[union-attr]
        watched = {**processes.pids(leave_out="bare"), "nats-server": nats_pid, "load generator": os.getpid()}
        cpu = CpuClock(watched)
        rate, posts = await keep_alive_load(gateway_port, portico_posts, args.concurrency, seconds=seconds,
                                            count=args.messages, expect=201)
        posted = len(posts)
        cpu_per: dict[str, dict[str, float]] = {}
        result["cpu_per"] = cpu_per
        cpu_per["customer message"] = {name: spent * 1000 / posted for name, spent in cpu.spent().items()}
        processes.check()
        stored = rows(conv_db, "SELECT count(*) FROM messages m JOIN conversation_viewers v "
                               "ON v.conversation_id = m.conversation_id WHERE v.viewer = :v",
                      v=poster.user_id)[0][0]
        assert stored == args.pool + len(warm) + posted, (stored, args.pool, len(warm), posted)
        bare_lat, post_lat = [ms for _, ms in bare], [ms for _, ms in posts]
        result.update(bare_rate=bare_rate, bare_n=len(bare), bare_post_p50=statistics.median(bare_lat),
                      bare_post_p99=percentile(bare_lat, 0.99), rate=rate, posted=posted,
                      post_p50=statistics.median(post_lat), post_p99=percentile(post_lat, 0.99),
                      per_conversation=(len(warm) + posted) / args.pool + 1)

        # 1b. New conversations and agents' answers: CPU per request in each process, same load.
        starts = [request_bytes("POST", gateway_port, LIST_PATH, headers=cookie_header(poster_cookie),
                                body=json.dumps({"subject": f"Invoice question {i}", **BODY}).encode())
                  for i in range(16)]
        answers = [request_bytes("POST", gateway_port, AGENT_POST_PATH.format(id=cid),
                                 headers={"Authorization": f"Bearer {API_KEY}"}, body=json.dumps(ANSWER).encode())
                   for cid in pool]
        for name, requests in (("new conversation", starts), ("agent answer", answers)):
            await keep_alive_load(gateway_port, requests, args.concurrency, seconds=WARMUP_SECONDS, expect=201)
            cpu = CpuClock(watched)
            _, done = await keep_alive_load(gateway_port, requests, args.concurrency, seconds=seconds,
                                            count=args.messages, expect=201)
            cpu_per[name] = {process: spent * 1000 / len(done) for process, spent in cpu.spent().items()}
            processes.check()

        # 2. The list: 10 conversations against `args.conversations`, seeded in-process.
        result["seed_seconds"] = seed_conversations(conv_db, few, 10) + seed_conversations(conv_db, many,
                                                                                           args.conversations)
        result["drain_seconds"] = await wait_outbox_drained(conv_db, "conversations", processes, timeout=120)
        # The seeded viewer rows are the rows the API wrote for the poster's conversations.
        shape = "SELECT DISTINCT portal, role, status, channel FROM conversation_viewers WHERE viewer = :v"
        assert rows(conv_db, shape, v=many.user_id) == rows(conv_db, shape, v=few.user_id) == [
            tuple(r) for r in rows(conv_db, shape, v=poster.user_id)], "seeded viewer rows differ from the API's"
        assert rows(conv_db, "SELECT count(*) FROM conversation_viewers WHERE viewer = :v",
                    v=many.user_id)[0][0] == args.conversations
        targets = {
            "bare": (bare_port, request_bytes("GET", bare_port, f"{BARE_LIST}?limit=25",
                                              headers=cookie_header(many_cookie))),
            "few": (gateway_port, request_bytes("GET", gateway_port, LIST_PATH, headers=cookie_header(few_cookie))),
            "many": (gateway_port, request_bytes("GET", gateway_port, LIST_PATH, headers=cookie_header(many_cookie))),
            # The same page size as the small customer's 10: what is left of the difference is not the rows sent.
            "many10": (gateway_port, request_bytes("GET", gateway_port, f"{LIST_PATH}?limit=10",
                                                   headers=cookie_header(many_cookie))),
        }
        conns = {name: await Connection.open(port) for name, (port, _) in targets.items()}
        try:
            pages = {}
            for name in ("few", "many"):
                status, page = await conns[name].send(targets[name][1])
                assert status == 200, page[:300]
                pages[name] = json.loads(page)
            assert len(pages["few"]["conversations"]) == 10 and pages["few"]["next_cursor"] is None, pages["few"]
            assert len(pages["many"]["conversations"]) == 25 and pages["many"]["next_cursor"], "many: not 25 + cursor"
            latencies: dict[str, list[float]] = {name: [] for name in targets}
            for i in range(args.warmup + args.samples):  # interleaved, so noise falls on all three alike
                for name, (_, raw) in targets.items():
                    started = time.perf_counter()
                    status, page = await conns[name].send(raw)
                    elapsed = (time.perf_counter() - started) * 1000
                    if status != 200:
                        raise AssertionError(f"{name}: answered {status}: {page[:300]!r}")
                    if i >= args.warmup:
                        latencies[name].append(elapsed)
        finally:
            for conn in conns.values():
                await conn.close()
        processes.check()
        for name, values in latencies.items():
            result[f"{name}_p50"], result[f"{name}_p99"] = statistics.median(values), percentile(values, 0.99)
        result["database"] = "PostgreSQL" if args.database_url else "SQLite"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight while posting")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--seconds", type=float, default=10.0, help="posting time per side (default 10)")
    amount.add_argument("--messages", type=int, help="messages per side instead of a time")
    parser.add_argument("--pool", type=int, default=64,
                        help="conversations the messages are spread over (default 64)")
    parser.add_argument("--conversations", type=int, default=10_000, help="the big customer's conversations")
    parser.add_argument("--samples", type=int, default=400, help="list requests per target after the warm-up")
    parser.add_argument("--warmup", type=int, default=50, help="list requests per target before measuring")
    parser.add_argument("--database-url", help="PostgreSQL server URL: fresh databases are created and dropped")
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    args = parser.parse_args()
    quiet_logging()
    r = run_in_temp_dir(lambda work: run(args, work), use_uvloop=True)

    amount_text = f"{args.messages} messages" if args.messages else f"{args.seconds:g} s"
    print(f"{r['database']}, nats-server sync_interval={args.sync}; gateway, auth and conversations as processes "
          f"(uvicorn uvloop/httptools, no access log); load generator: one process, keep-alive HTTP/1.1")
    print(f"posting: {args.concurrency} in flight, {amount_text} per side after {WARMUP_SECONDS:g} s warm-up, "
          f"over {args.pool} conversations (~{r['per_conversation']:.0f} messages each at the end)")
    print(f"bare FastAPI POST (parse JSON, answer JSON):        {r['bare_rate']:10,.0f} req/s   "
          f"p50 {r['bare_post_p50']:6.1f} ms  p99 {r['bare_post_p99']:6.1f} ms")
    print(f"Portico message post (SSO customer, JSON):         {r['rate']:10,.0f} msg/s   "
          f"p50 {r['post_p50']:6.1f} ms  p99 {r['post_p99']:6.1f} ms")
    print(f"ratio posts / bare:                                 {r['rate'] / r['bare_rate']:10.4f}")
    cpu_per = r["cpu_per"]
    assert isinstance(cpu_per, dict)
    bare_cpu = r["bare_cpu"]
    assert isinstance(bare_cpu, float)
    print(f"CPU per request (ms), same load as above; bare FastAPI POST: {bare_cpu:.3f} ms per request")
    for operation, cpu in cpu_per.items():
        path = sum(cpu.get(name, 0.0) for name in REQUEST_PATH)
        print(f"  {operation}: " + ", ".join(f"{name} {ms:.3f}" for name, ms in cpu.items())
              + f"; on the request path ({', '.join(REQUEST_PATH)}) {path:.3f} ms, "
              + (f"ratio to bare {path / bare_cpu:.1f}" if bare_cpu else "ratio to bare n/a (bare CPU too small)"))
    print(f"list, first page of 25, {args.samples} requests each, one at a time, interleaved "
          f"(seeded {10 + args.conversations:,} conversations in {r['seed_seconds']:.1f} s, "
          f"outbox drained in {r['drain_seconds']:.1f} s)")
    print(f"bare FastAPI GET:                         p50 {r['bare_p50']:7.2f} ms   p99 {r['bare_p99']:7.2f} ms")
    print(f"list, customer with 10 conversations:     p50 {r['few_p50']:7.2f} ms   p99 {r['few_p99']:7.2f} ms")
    print(f"list, customer with {args.conversations:,} conversations: ".ljust(42)
          + f"p50 {r['many_p50']:7.2f} ms   p99 {r['many_p99']:7.2f} ms")
    print(f"ratio {args.conversations:,} / 10:".ljust(42)
          + f"p50 {r['many_p50'] / r['few_p50']:7.2f}      p99 {r['many_p99'] / r['few_p99']:7.2f}")
    print("  same customer, page of 10:".ljust(42)
          + f"p50 {r['many10_p50']:7.2f} ms   p99 {r['many10_p99']:7.2f} ms")
    print(f"ratio {args.conversations:,} / 10, both pages of 10:".ljust(42)
          + f"p50 {r['many10_p50'] / r['few_p50']:7.2f}      p99 {r['many10_p99'] / r['few_p99']:7.2f}")
    print("ratio list (10) / bare GET:".ljust(42)
          + f"p50 {r['few_p50'] / r['bare_p50']:7.2f}      p99 {r['few_p99'] / r['bare_p99']:7.2f}")


if __name__ == "__main__":
    main()
