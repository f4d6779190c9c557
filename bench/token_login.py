"""SSO token login benchmark: HS256 JWT -> gateway -> auth over NATS RPC -> account + session opened.

Prints, from one run:
  * a bare FastAPI endpoint (parses `{"token": ...}`, answers JSON) served by the same uvicorn config as the
    gateway, under the same load: the baseline, and Portico's ratio to it;
  * returning customers' logins (`POST /api/v1/portals/demo/session/sso`, accounts that exist): logins/s,
    p50/p99 latency at a fixed concurrency, and the CPU per login of each process (gateway, auth,
    conversations, notifications, nats-server, the load generator), with the sums on the request path
    (gateway, auth, nats-server) and in all of Portico's processes;
  * first logins (a new e-mail each: the account is created in auth and, through `UserRegistered`, in
    conversations and notifications): the same figures, the CPU counted until every service has the account;
  * e-mail access for returning customers: code requests (answered after the fixed anti-enumeration delay,
    `--email-concurrency` in flight, the CPU counted until notifications has written every e-mail) and code
    verifications, the same figures;
  * a raw PyJWT decode (HS256, leeway 60, `email`/`iat` required, one core) for scale.

Everything runs as `make run` runs it: nats-server (sync_interval always), auth, conversations and
notifications as `python -m services.<name>` processes, the gateway as `python -m services.gateway`
(uvicorn, uvloop, httptools, no access log). The bare endpoint is this file started with `--bare-server`.
The load generator is this process: a minimal keep-alive HTTP/1.1 client on uvloop. Every login comes from
127.0.0.1, so the sign-in rate limits are scaled far above the run (`PORTICO_RATE_LIMIT_SCALE`; they are
still counted in the KV bucket).

    python bench/token_login.py [--returning 3000] [--first 500] [--email 300] [--concurrency 16] [--customers 50]
                                [--email-concurrency 64] [--sync always]
                                [--database-url postgresql://user:pw@host/postgres]
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

from harness import (CpuClock, Databases, Processes, keep_alive_load, percentile, quiet_logging, request_bytes,
                     run_in_temp_dir, running_nats, seed_auth, serve_like_gateway, start_portico, wait_http)

BARE_PATH = "/bare/session/sso"
PATH = "/api/v1/portals/demo/session/sso"
EMAIL_PATH = "/api/v1/portals/demo/session/email"
VERIFY_PATH = "/api/v1/portals/demo/session/email/verify"
RATE_LIMIT_SCALE = 1000.0
REQUEST_PATH = ("gateway", "auth", "nats-server")
SERVICES = ("auth", "conversations", "notifications")


# -- the bare endpoint (a child process: `python bench/token_login.py --bare-server PORT`) ---------------

def serve_bare(port: int) -> None:
    """A trivial FastAPI app served exactly as `services/gateway/__main__.py` serves the gateway."""
    from fastapi import FastAPI
    from pydantic import BaseModel, ConfigDict, Field

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid")

        token: str = Field(max_length=8192)

    app = FastAPI()

    @app.post(BARE_PATH)
    async def post(body: Body) -> dict:
        return {"user_id": "bare", "token_length": len(body.token)}

    serve_like_gateway(app, port)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--bare-server":
    serve_bare(int(sys.argv[2]))
    sys.exit(0)


import jwt  # noqa: E402

from services.auth.email_access import EMAIL_START_SECONDS  # noqa: E402
from services.runtime.migrations import upgrade  # noqa: E402
from services.runtime.nats import free_port  # noqa: E402
from tests.helpers import rows  # noqa: E402


def sign(secret: str, emails: list[str]) -> list[str]:
    now = int(time.time())
    return [jwt.encode({"email": email, "iat": now}, secret, algorithm="HS256") for email in emails]


def raw_decode(tokens: list[str], secret: str, n: int) -> float:
    """Decodes per second, one core."""
    started = time.perf_counter()
    for i in range(n):
        jwt.decode(tokens[i % len(tokens)], secret, algorithms=["HS256"], leeway=60,
                   options={"require": ["email", "iat"]})
    return n / (time.perf_counter() - started)


def login_requests(port: int, path: str, tokens: list[str]) -> list[bytes]:
    return [request_bytes("POST", port, path, body=json.dumps({"token": t}).encode()) for t in tokens]


def opened_session(_: int, body: bytes) -> None:
    if b'"user_id"' not in body:
        raise AssertionError(f"no session in the answer: {body[:300]!r}")


async def everywhere(dbs: dict[str, str], emails: list[str], processes: Processes, timeout: float = 120) -> None:
    """Wait until auth has published every account's `UserRegistered` and conversations and notifications
    have each recorded every account."""
    checks = {
        "auth": (dbs["auth"], "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0),
        "conversations": (dbs["conversations"], "SELECT count(*) FROM customers WHERE kind = 'customer'", None),
        "notifications": (dbs["notifications"], "SELECT count(*) FROM customer_addresses WHERE kind = 'customer'",
                          None),
    }
    expected = rows(dbs["auth"], "SELECT count(*) FROM users WHERE kind = 'customer'")[0][0]
    assert expected >= len(emails), (expected, len(emails))
    deadline = time.monotonic() + timeout
    for service, (url, sql, want) in checks.items():
        while rows(url, sql)[0][0] != (expected if want is None else want):
            processes.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} does not have every account after {timeout:.0f} s")
            await asyncio.sleep(0.02)


async def mails_written(folder: Path, n: int, processes: Processes, timeout: float = 120) -> None:
    """Wait until the mail folder (no SMTP server set: notifications writes each e-mail there) holds `n`."""
    deadline = time.monotonic() + timeout
    while not folder.exists() or len(list(folder.glob("*.eml"))) < n:
        processes.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} e-mails written after {timeout:.0f} s")
        await asyncio.sleep(0.02)


def read_codes(folder: Path) -> dict[str, str]:
    """Each address's latest code, from the e-mails in the folder."""
    codes: dict[str, str] = {}
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found = re.search(r"\b(\d{6})\b", message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        if found:
            codes[str(message["To"])] = found.group(1)
    return codes


def summary(rate: float, answers: list[tuple[int, float]], cpu: dict[str, float], n: int) -> dict[str, object]:
    latencies = [ms for _, ms in answers]
    per_login = {name: spent * 1000 / n for name, spent in cpu.items()}
    return {"rate": rate, "n": n, "p50": statistics.median(latencies), "p99": percentile(latencies, 0.99),
            "cpu": per_login, "request_path": sum(per_login.get(name, 0.0) for name in REQUEST_PATH),
            "all": sum(ms for name, ms in per_login.items() if name != "load generator")}


async def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    result: dict[str, object] = {}
    os.environ["PORTICO_RATE_LIMIT_SCALE"] = str(RATE_LIMIT_SCALE)  # read by the services' processes
    with (Databases(work, args.database_url) as databases, running_nats(work, args.sync) as nats_server,
          Processes(work) as processes):
        dbs = {service: databases.url(service) for service in SERVICES}
        secret = seed_auth(dbs["auth"]).sso_secret
        for service in SERVICES[1:]:
            upgrade(service, dbs[service])
        gateway_port, env = await start_portico(processes, work, nats_server.url, dbs)
        bare_port = free_port()
        processes.start("bare", [str(Path(__file__).resolve()), "--bare-server", str(bare_port)], env)
        await wait_http(bare_port, "/docs", processes)

        returning = [f"returning{i:04d}@example.com" for i in range(args.customers)]
        first = [f"first{i:06d}@example.com" for i in range(args.first)]
        returning_tokens, first_tokens = sign(secret, returning), sign(secret, first)
        result["decodes"] = raw_decode(returning_tokens, secret, 20_000)

        # The baseline: the same load on the bare endpoint.
        bare = login_requests(bare_port, BARE_PATH, returning_tokens)
        await keep_alive_load(bare_port, bare, args.concurrency, count=max(200, args.returning // 5))
        result["bare_rate"], bare_answers = await keep_alive_load(bare_port, bare, args.concurrency,
                                                                  count=args.returning)
        bare_latencies = [ms for _, ms in bare_answers]
        result["bare_p50"], result["bare_p99"] = statistics.median(bare_latencies), percentile(bare_latencies, 0.99)

        # The returning customers' accounts (and those that ask for codes) exist everywhere before it starts.
        mailed = [f"mailed{i:05d}@example.com" for i in range(args.email)]
        logins = login_requests(gateway_port, PATH, returning_tokens)
        await keep_alive_load(gateway_port, logins + login_requests(gateway_port, PATH, sign(secret, mailed)),
                              args.concurrency, count=len(logins) + len(mailed), check=opened_session)
        await everywhere(dbs, returning + mailed, processes)
        await keep_alive_load(gateway_port, logins, args.concurrency, count=max(200, args.returning // 5),
                              check=opened_session)
        pids = {**processes.pids(leave_out="bare"), "nats-server": nats_server.process.pid,  # type: ignore[union-attr]
                "load generator": os.getpid()}

        cpu = CpuClock(pids)
        rate, answers = await keep_alive_load(gateway_port, logins, args.concurrency, count=args.returning,
                                              check=opened_session)
        result["returning"] = summary(rate, answers, cpu.spent(), len(answers))

        # First logins: each a new e-mail, counted until every service has the account.
        cpu = CpuClock(pids)
        rate, answers = await keep_alive_load(gateway_port, login_requests(gateway_port, PATH, first_tokens),
                                              args.concurrency, count=len(first_tokens), check=opened_session)
        await everywhere(dbs, returning + mailed + first, processes)
        result["first"] = summary(rate, answers, cpu.spent(), len(answers))

        # E-mail access for returning customers: a code requested (answered after the fixed delay), then
        # entered. The CPU of a request is counted until its e-mail is written (by notifications).
        if args.email:
            mail = work / "var" / "mail"
            before = len(list(mail.glob("*.eml"))) if mail.exists() else 0
            addresses = mailed  # one code each (a new code replaces the last)
            cpu = CpuClock(pids)
            rate, answers = await keep_alive_load(
                gateway_port, [request_bytes("POST", gateway_port, EMAIL_PATH, body=json.dumps(
                    {"email": a, "bearer": True}).encode()) for a in addresses],
                args.email_concurrency, count=len(addresses), expect=202)
            await mails_written(mail, before + len(addresses), processes)
            result["code_request"] = summary(rate, answers, cpu.spent(), len(answers))
            codes = read_codes(mail)
            cpu = CpuClock(pids)
            rate, answers = await keep_alive_load(
                gateway_port, [request_bytes("POST", gateway_port, VERIFY_PATH, body=json.dumps(
                    {"email": a, "code": codes[a], "bearer": True}).encode()) for a in addresses],
                args.concurrency, count=len(addresses), check=opened_session)
            result["code_verify"] = summary(rate, answers, cpu.spent(), len(answers))
        processes.check()
        result["database"] = "PostgreSQL" if args.database_url else "SQLite"
    return result


def print_case(title: str, case: dict[str, object], bare_rate: float) -> None:
    cpu = case["cpu"]
    assert isinstance(cpu, dict)
    print(f"{title:<48}{case['rate']:10,.0f} logins/s  p50 {case['p50']:6.1f} ms  p99 {case['p99']:6.1f} ms  "
          f"ratio to bare {case['rate'] / bare_rate:.4f}")
    print("  CPU per login: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu.items()))
    print(f"  CPU per login on the request path ({' + '.join(REQUEST_PATH)}): {case['request_path']:.2f} ms; "
          f"in all of Portico's processes: {case['all']:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--returning", type=int, default=3000, help="timed logins of returning customers")
    parser.add_argument("--first", type=int, default=500, help="timed first logins (a new e-mail each)")
    parser.add_argument("--customers", type=int, default=50, help="returning customers the logins rotate over")
    parser.add_argument("--email", type=int, default=300,
                        help="e-mail code requests, then verifications (each by another returning customer; 0: none)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--email-concurrency", type=int, default=64,
                        help="code requests in flight (each answered after the fixed delay: at most this many "
                             "per delay)")
    parser.add_argument("--database-url", help="PostgreSQL server URL: fresh databases are created and dropped")
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    args = parser.parse_args()
    quiet_logging()
    r = run_in_temp_dir(lambda work: run(args, work), use_uvloop=True)

    print(f"{r['database']}, nats-server sync_interval={args.sync}; gateway, auth, conversations and notifications "
          f"as processes (uvicorn uvloop/httptools, no access log); load generator: one process, keep-alive "
          f"HTTP/1.1; {args.concurrency} in flight; rate limits x{RATE_LIMIT_SCALE:g}")
    print(f"raw PyJWT HS256 decode (one core, for scale):   {r['decodes']:10,.0f} decodes/s")
    print(f"bare FastAPI POST (parse JSON, answer JSON):    {r['bare_rate']:10,.0f} req/s     "
          f"p50 {r['bare_p50']:6.1f} ms  p99 {r['bare_p99']:6.1f} ms")
    returning, first = r["returning"], r["first"]
    assert isinstance(returning, dict) and isinstance(first, dict)
    bare_rate = float(r["bare_rate"])  # type: ignore[arg-type]
    print_case(f"returning customer ({returning['n']} logins, {args.customers} accounts):", returning, bare_rate)
    print_case(f"first login ({first['n']} new accounts, until everywhere):", first, bare_rate)
    if "code_request" in r:
        request, verify = r["code_request"], r["code_verify"]
        assert isinstance(request, dict) and isinstance(verify, dict)
        print_case(f"e-mail code request ({request['n']}, fixed delay {EMAIL_START_SECONDS:g} s, until mailed):",
                   request, bare_rate)
        print(f"  ({args.email_concurrency} in flight: at most {args.email_concurrency / EMAIL_START_SECONDS:,.0f} "
              f"requests/s through the fixed delay)")
        print_case(f"e-mail code verify ({verify['n']}):", verify, bare_rate)


if __name__ == "__main__":
    main()
