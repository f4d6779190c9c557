"""SSO token login benchmark: HS256 JWT -> gateway -> auth over NATS RPC -> account + session opened.

Prints, from one run:
  * a raw PyJWT baseline: `jwt.decode` (HS256, leeway 60, `email`/`iat` required) in a tight loop, one core;
  * Portico's token logins per second: `POST /api/v1/portals/demo/session/sso` through the real gateway
    (uvicorn, HTTP over loopback) and the real auth service (SQLite, sessions KV bucket on JetStream),
    at a fixed concurrency, with p50/p99 latency;
and the ratio of the logins to the raw decodes. The gateway, auth and the load generator share this
process (one event loop); nats-server is the embedded child process.

    python bench/token_login.py [--logins 2000] [--concurrency 16] [--sync always]
"""

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import httpx
import jwt
import uvicorn

# harness first: it puts this checkout on sys.path for the imports below.
from harness import percentile, refuse_cookies, run_in_temp_dir, running_nats, seed_auth

from services.auth.app import build
from services.gateway.app import create_app
from services.runtime.logging import configure_logging
from services.runtime.nats import free_port
from services.runtime.settings import Settings

EMAILS = [f"bench{i:02d}@example.com" for i in range(50)]
WARMUP = 100
RATE_LIMIT_SCALE = 1000.0
PATH = "/api/v1/portals/demo/session/sso"


def sign(secret: str, n: int) -> list[str]:
    now = int(time.time())
    return [jwt.encode({"email": EMAILS[i % len(EMAILS)], "iat": now}, secret, algorithm="HS256") for i in range(n)]


def raw_decode(tokens: list[str], secret: str, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        jwt.decode(tokens[i % len(tokens)], secret, algorithms=["HS256"], leeway=60,
                   options={"require": ["email", "iat"]})
    return n / (time.perf_counter() - started)


async def drive(client: httpx.AsyncClient, tokens: list[str], concurrency: int) -> tuple[float, list[float]]:
    """Every token posted once, `concurrency` requests in flight; logins/s and latencies (ms)."""
    pending = iter(tokens)
    latencies: list[float] = []

    async def worker() -> None:
        for token in pending:
            sent = time.perf_counter()
            response = await client.post(PATH, json={"token": token})
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200:
                raise AssertionError(f"login answered {response.status_code}: {response.text}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(tokens) / (time.perf_counter() - started), latencies


async def portico(nats_url: str, work: Path, logins: int, concurrency: int) -> dict[str, float]:
    auth_db = f"sqlite:///{work / 'auth.sqlite3'}"
    secret = seed_auth(auth_db).sso_secret
    warmup, timed = sign(secret, WARMUP), sign(secret, logins)
    baseline = raw_decode(timed, secret, max(logins, 20_000))

    # Every login comes from 127.0.0.1: raise the sign-in rate limits far above the run (still counted in KV).
    settings = Settings(env="test", nats_url=nats_url, auth_database_url=auth_db, data_dir=work / "var",
                        rate_limit_scale=RATE_LIMIT_SCALE)
    auth = build(settings)
    await auth.start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    # Refuse every cookie: a kept session cookie would make each login also end the previous session.
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, cookies=refuse_cookies(),
                               limits=httpx.Limits(max_connections=concurrency))
    try:
        deadline = time.monotonic() + 15
        while not server.started or (await client.get("/healthz")).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("gateway not up")
            await asyncio.sleep(0.1)
        await drive(client, warmup, concurrency)  # creates the 50 accounts, warms connections and caches
        rate, latencies = await drive(client, timed, concurrency)
        assert not client.cookies, "a session cookie was kept"
    finally:
        await client.aclose()
        server.should_exit = True
        await serving
        await auth.stop()
    return {"baseline": baseline, "rate": rate, "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99)}


async def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    with running_nats(work, args.sync) as server:
        return await portico(server.url, work, args.logins, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sync", default="always", help="nats-server sync_interval (as make run sets it)")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    result = run_in_temp_dir(lambda work: measure(args, work))

    print(f"nats-server sync_interval={args.sync}; gateway, auth (SQLite) and load generator in one process; "
          f"{args.logins} logins after {WARMUP} warm-up, {args.concurrency} in flight, {len(EMAILS)} e-mails, "
          f"rate limits x{RATE_LIMIT_SCALE:g}")
    print(f"raw PyJWT HS256 decode (one core):                 {result['baseline']:10,.0f} decodes/s")
    print(f"Portico token login (HTTP -> gateway -> auth):     {result['rate']:10,.0f} logins/s")
    print(f"ratio logins / decodes:                            {result['rate'] / result['baseline']:10.4f}")
    print(f"login latency at {args.concurrency} in flight: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms")


if __name__ == "__main__":
    main()
