"""`portico`: the operator's command line (dev runner, migrations, seed, dead letters, event logs, replay,
health checks, status, AsyncAPI)."""

import asyncio
import importlib
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

import typer

from contracts import operations
from contracts.notifications import ListNotifications, RetryNotification
from contracts.operations import Operation, ReplyT, RequestT
from contracts.states import NotificationStatus
from contracts.subjects import SERVICES
from services.runtime.settings import Settings

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
# What `portico dev` writes under the data dir: the URL of the NATS server it uses and its own pid.
DEV_NATS_RECORD = "dev-nats.json"
# Seconds a command tries to reach NATS before it gives up (the whole command ends within about 5 s).
NATS_CONNECT_BUDGET = 3.0
NATS_CONNECT_TIMEOUT = 1.2

app = typer.Typer(help="Portico operator commands.", no_args_is_help=True, add_completion=False)
dlq_app = typer.Typer(help="Events consumers gave up on.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
notifications_app = typer.Typer(help="E-mails and webhooks to customers: failed ones, retrying them.",
                                no_args_is_help=True)
app.add_typer(notifications_app, name="notifications")
events_app = typer.Typer(help="Event logs: a stream written out as JSON lines, and read back into a test server.",
                         no_args_is_help=True)
app.add_typer(events_app, name="events")


def _service_module(service: str, module: str = "app"):  # type: ignore[no-untyped-def]
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{service}.{module}")


@app.command()
def migrate(services: list[str] = typer.Argument(None, help="Services to migrate (default: all).")) -> None:
    """Bring each service's database to the newest schema (Alembic)."""
    from services.runtime.migrations import upgrade

    settings = Settings()
    for service in services or SERVICES:
        _service_module(service)
        upgrade(service, settings.database_url(service))
        typer.echo(f"migrated {service}")


def demo_credentials(settings: Settings) -> dict[str, str]:
    """PORTICO_BOOTSTRAP_* when set; in development, else what an earlier run chose, else new random values."""
    from services.auth.domain import new_api_key, new_password

    if settings.env != "dev" and not (settings.bootstrap_api_key and settings.bootstrap_admin_password):
        typer.echo("Set PORTICO_BOOTSTRAP_API_KEY and PORTICO_BOOTSTRAP_ADMIN_PASSWORD to seed outside development.",
                   err=True)
        raise typer.Exit(2)
    path = settings.data_dir / "demo-credentials.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    creds = {
        "api_key": (settings.bootstrap_api_key.get_secret_value() if settings.bootstrap_api_key
                    else saved.get("api_key") or new_api_key()),
        "admin_password": (settings.bootstrap_admin_password.get_secret_value() if settings.bootstrap_admin_password
                           else saved.get("admin_password") or new_password()),
    }
    if settings.env == "dev":  # kept (owner-only) so that the next `make run` prints the same logins
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(creds))
    return creds


@app.command()
def seed() -> None:
    """Create the demo org, portal `demo`, admin `admin@example.com` and an `org.admin` API key."""
    from services.auth.seed import DEMO_ADMIN_EMAIL, seed_demo
    from services.runtime.db import make_engine, session_scope

    settings = Settings()
    creds = demo_credentials(settings)
    from services.kb.seed import seed_demo as seed_kb

    engine = make_engine(settings.database_url("auth"))
    with session_scope(engine) as session:
        portal = seed_demo(session, api_key=creds["api_key"], admin_password=creds["admin_password"])
        slug, org_id, kb_id = portal.slug, portal.org_id, portal.kb_id
    engine.dispose()
    engine = make_engine(settings.database_url("kb"))
    with session_scope(engine) as session:
        seed_kb(session, portal=slug, org_id=org_id, kb_id=kb_id)
    engine.dispose()
    typer.echo(f"seeded demo org: portal demo (knowledge base with sample articles), admin {DEMO_ADMIN_EMAIL}")


def _banner(settings: Settings, creds: dict[str, str], nats_url: str) -> str:
    url = settings.resolved_public_url
    return "\n".join([
        "",
        "=" * 64,
        f"  Portico is running at {url}",
        f"  Portal:        {url}/portals/demo/   (API: {url}/api/v1/portals/demo)",
        "  Customers:     sign in on the portal with any e-mail address; the code arrives in the mail below",
        f"  API docs:      {url}/docs",
        "  Staff admin:   admin@example.com",
        f"  Password:      {creds['admin_password']}",
        f"  org.admin key: {creds['api_key']}",
        f"  NATS:          {nats_url}",
        (f"  E-mail out:    {url}/dev/mail  (files in {(settings.data_dir / 'mail').resolve()})"
         if settings.smtp_url is None else "  E-mail out:    PORTICO_SMTP_URL"),
        f"  Replies in:    SMTP {settings.inbound_smtp_host}:{settings.inbound_smtp_port} for *@{settings.reply_domain}"
        " (if taken, the notifications log names the port used)",
        f"  Data:          {settings.data_dir.resolve()}",
        "  Stop with Ctrl-C.",
        "=" * 64,
        "",
    ])


def _announce_when_ready(settings: Settings, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    ready_url = f"http://127.0.0.1:{settings.http_port}/readyz"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    print(text, flush=True)
                    return
        except OSError:
            pass
        time.sleep(0.3)
    print(f"Portico did not become ready within {timeout:.0f}s; see the logs above.", flush=True)


@app.command()
def dev() -> None:
    """`make run`: NATS (embedded unless PORTICO_NATS_URL), every service and the gateway, seeded."""
    from honcho.manager import Manager

    from services.runtime.nats import free_port, nats_server_binary, write_server_config

    settings = Settings()
    if _port_taken(settings.http_port):
        typer.echo(f"Port {settings.http_port} is taken; set PORTICO_HTTP_PORT to a free one.", err=True)
        raise typer.Exit(2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(None)
    seed()
    creds = demo_credentials(settings)

    manager = Manager()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PORTICO_DATA_DIR": str(settings.data_dir.resolve())}
    if settings.nats_url:
        nats_url = settings.nats_url
    else:
        port = 4222 if not _port_taken(4222) else free_port()
        config = write_server_config(settings.data_dir / "nats", port, sync_interval=settings.nats_sync_interval)
        nats_url = f"nats://127.0.0.1:{port}"
        manager.add_process("nats", f"exec {nats_server_binary()} -c {config}", env=env)
    env["PORTICO_NATS_URL"] = nats_url
    for service in SERVICES:
        manager.add_process(service, f"exec {sys.executable} -m services.{service}", env=env)
    manager.add_process("gateway", f"exec {sys.executable} -m services.gateway", env=env)

    threading.Thread(target=_announce_when_ready, args=(settings, _banner(settings, creds, nats_url)),
                     daemon=True).start()
    record = _record_dev_nats(settings, nats_url)
    try:
        manager.loop()
    finally:
        _forget_dev_nats(record)
    sys.exit(manager.returncode or 0)


def _record_dev_nats(settings: Settings, nats_url: str) -> Path:
    """Write `<data dir>/dev-nats.json` `{"url", "pid"}` so that other `portico` commands find this NATS."""
    path = settings.data_dir / DEV_NATS_RECORD
    path.write_text(json.dumps({"url": nats_url, "pid": os.getpid()}))
    return path


def _forget_dev_nats(path: Path) -> None:
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():  # a newer `portico dev` keeps its own
            path.unlink()
    except (OSError, ValueError):
        pass


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(nats_url: str, timeout: float = 1.0) -> bool:
    """Something accepts TCP connections at the URL's host and port (4222 when none is given)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(nats_url)
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def resolve_nats_url(settings: Settings) -> tuple[str, str]:
    """The NATS server an operator command talks to, and why: `(url, reason)`.

    Order: PORTICO_NATS_URL when set; else the server a running `portico dev` recorded in
    `<data dir>/dev-nats.json` (its process alive and the server accepting connections); else
    `nats://127.0.0.1:4222`, with a reason that says no running `portico dev` was found.
    """
    if settings.nats_url:
        return settings.nats_url, "PORTICO_NATS_URL"
    path = settings.data_dir / DEV_NATS_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and isinstance(record.get("url"), str):
        if _process_alive(record.get("pid")) and _listening(record["url"]):
            return record["url"], f"the running `portico dev`, recorded in {path}"
        return DEFAULT_NATS_URL, (f"default; the `portico dev` recorded in {path} is not running; "
                                  "set PORTICO_NATS_URL to choose a server")
    return DEFAULT_NATS_URL, (f"default; no running `portico dev` found in {settings.data_dir} (PORTICO_DATA_DIR); "
                              "set PORTICO_NATS_URL to choose a server")


def _nats_url_announced() -> str:
    """`resolve_nats_url`, said on one line of stderr (stdout stays the command's output)."""
    url, reason = resolve_nats_url(Settings())
    typer.echo(f"NATS: {url} ({reason})", err=True)
    return url


async def _connect(nats_url: str):  # type: ignore[no-untyped-def]
    """A NATS connection for one command, or exit 1 with "cannot reach NATS at <url>" within
    `NATS_CONNECT_BUDGET` seconds: never a retry loop, never a traceback."""
    import nats

    async def quiet(_: Exception) -> None:
        return None

    try:
        return await asyncio.wait_for(
            nats.connect(nats_url.split(","), connect_timeout=NATS_CONNECT_TIMEOUT, allow_reconnect=False,
                         max_reconnect_attempts=1, reconnect_time_wait=0.1, error_cb=quiet),
            timeout=NATS_CONNECT_BUDGET)
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        raise typer.Exit(_fail(f"cannot reach NATS at {nats_url} ({detail}); is it running? "
                               "Set PORTICO_NATS_URL to use another server.")) from None


def _port_taken(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dlq_app.command("list")
def dlq_list(as_json: bool = typer.Option(False, "--json", help="One JSON object a line."),
             limit: int = typer.Option(100, help="At most this many, newest last.")) -> None:
    """Events on the dead-letter subject, with the consumer and the error."""
    rows = asyncio.run(_dlq_rows(_nats_url_announced(), limit))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        if not rows:
            typer.echo("no dead-lettered events", err=True)
        return
    if not rows:
        typer.echo("no dead-lettered events")
        return
    for row in rows:
        typer.echo(f"#{row['seq']} {row['failed_at']} consumer={row['consumer']} subject={row['subject']} "
                   f"event={row['event_id']} deliveries={row['deliveries']}\n    error: {row['error']}")


async def _dlq_rows(nats_url: str, limit: int) -> list[dict[str, object]]:
    """The last `limit` messages of the DLQ stream as dicts; `[]` when it is empty or was never created
    (a read: nothing is created on the server)."""
    from services.runtime.backlog import dead_letters

    nc = await _connect(nats_url)
    try:
        return [letter.as_dict() for letter in await dead_letters(nc.jetstream(), limit)]
    finally:
        await nc.close()


def _ask(operation: Operation[RequestT, ReplyT], request: RequestT) -> ReplyT:
    """One request to a running service over NATS (a declared operation, `contracts.operations`);
    its error or a missing service ends the command with a message."""
    import nats.errors

    nats_url = _nats_url_announced()

    async def ask() -> ReplyT:
        nc = await _connect(nats_url)
        try:
            reply = await nc.request(operation.subject, request.model_dump_json().encode(), timeout=10)
        except nats.errors.NoRespondersError:
            raise typer.Exit(_fail(f"the {operation.service} service is not running")) from None
        except nats.errors.TimeoutError:
            raise typer.Exit(_fail(f"the {operation.service} service did not answer within 10 s")) from None
        finally:
            await nc.close()
        answer = json.loads(reply.data or b"{}")
        if "error" in answer:
            raise typer.Exit(_fail(f"{answer['error']}: {answer.get('message', '')}"))
        return operation.reply.model_validate(answer["data"])

    return asyncio.run(ask())


def _fail(message: str) -> int:
    typer.echo(message, err=True)
    return 1


@notifications_app.command("failed")
def notifications_failed(as_json: bool = typer.Option(False, "--json", help="One JSON object a line."),
                         status: str = typer.Option("failed", help="failed, pending, sent, cancelled or bounced.")) -> None:
    """Notifications that gave up after their last try (or in another state), newest first."""
    try:
        wanted = ListNotifications(status=status)  # type: ignore[arg-type]
    except ValueError:
        raise typer.Exit(_fail(f"unknown status {status!r}: {', '.join(NotificationStatus)}")) from None
    rows = _ask(operations.notifications.list_notifications, wanted).notifications
    if as_json:
        for row in rows:
            typer.echo(row.model_dump_json())
        return
    if not rows:
        typer.echo(f"no {status} notifications")
    for row in rows:
        typer.echo(f"{row.id} {row.created_at.isoformat()} {row.kind} channel={row.channel} "
                   f"conversation={row.conversation_id} tries={row.attempts}\n    error: {row.last_error}")


@notifications_app.command("retry")
def notifications_retry(notification_id: str) -> None:
    """Put a failed notification back in the queue and try it now."""
    notification = _ask(operations.notifications.retry_notification,
                        RetryNotification(notification_id=notification_id)).notification
    typer.echo(f"{notification.id}: {notification.status} after {notification.attempts} "
               f"tr{'y' if notification.attempts == 1 else 'ies'}")


@app.command()
def replay(service: str, rebuild: bool = typer.Option(
        False, help="Empty the service's read models and inbox first, then rebuild them from the streams.")) -> None:
    """Apply the events a service consumes from the start of the streams (idempotent)."""
    from services.runtime.logging import configure_logging

    module = _service_module(service)
    settings = Settings().model_copy(update={"nats_url": _nats_url_announced()})
    configure_logging(f"replay-{service}", "WARNING")
    svc = module.build(settings)

    async def run() -> int:
        await (await _connect(settings.resolved_nats_url)).close()  # reachable, or a clear message at once
        try:
            await asyncio.wait_for(svc.broker.connect(), timeout=NATS_CONNECT_BUDGET)
        except Exception:
            raise typer.Exit(_fail(f"cannot reach NATS at {settings.resolved_nats_url}")) from None
        try:
            return await svc.replay(rebuild=rebuild)
        finally:
            await svc.broker.stop()

    typer.echo(f"{service}: {asyncio.run(run())} events applied")


# Seconds `portico health` waits for an answer (a container health check or probe gives it about 5 s).
HEALTH_TIMEOUT = 2.0


@app.command()
def health(target: str = typer.Argument(..., help="auth, conversations, notifications, kb or gateway."),
           live: bool = typer.Option(False, "--live", help="Liveness: an answer is enough, even if the "
                                     "database failed (services) or a service is down (gateway)."),
           ready: bool = typer.Option(False, "--ready", help="gateway only: /readyz (every service answers) "
                                      "instead of /healthz (this gateway and its NATS connection).")) -> None:
    """Health check for a container or probe: exit 0 when healthy, 1 (with the reason on stderr) if not.

    A service (auth, conversations, notifications, kb): a replica answers the ping RPC over
    PORTICO_NATS_URL within 2 s and its database answered (`--live`: any answer). The ping goes to the
    service's queue group, so it tells that the service works, not which replica answered.
    `gateway`: GET http://127.0.0.1:PORTICO_HTTP_PORT/healthz of the gateway in this container
    (`--ready`: /readyz). Prints one JSON line with what was checked.
    """
    settings = Settings()
    if target == "gateway":
        raise typer.Exit(_gateway_health(settings, "/readyz" if ready else "/healthz", live=live))
    if target not in SERVICES:
        raise typer.Exit(_fail(f"unknown target {target!r}; one of {', '.join((*SERVICES, 'gateway'))}"))
    if ready:
        raise typer.Exit(_fail("--ready is for the gateway; a service's check is its readiness already"))
    nats_url, _ = resolve_nats_url(settings)
    raise typer.Exit(asyncio.run(_service_health(nats_url, target, live=live)))


def _gateway_health(settings: Settings, path: str, *, live: bool) -> int:
    """0 when the gateway on this host answers `path` with 200 (`live`: with any HTTP status), else 1.
    Asks PORTICO_HTTP_HOST:PORTICO_HTTP_PORT, or 127.0.0.1 when the gateway listens on every interface."""
    import urllib.error

    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host
    url = f"http://{host if ':' not in host else f'[{host}]'}:{settings.http_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError as exc:
        return _fail(f"gateway: no answer from {url} ({exc})")
    typer.echo(json.dumps({"target": "gateway", "url": url, "status": status}))
    if status == 200 or live:
        return 0
    return _fail(f"gateway: {url} answered {status}: {body.decode(errors='replace')[:500]}")


async def _service_health(nats_url: str, service: str, *, live: bool) -> int:
    """0 when a replica of `service` answers the ping (and, unless `live`, its database answered), else 1."""
    import nats.errors

    from contracts.rpc import Ping, Pong

    nc = await _connect(nats_url)
    try:
        try:
            reply = await nc.request(operations.ping(service).subject, Ping().model_dump_json().encode(),
                                     timeout=HEALTH_TIMEOUT)
        except nats.errors.NoRespondersError:
            return _fail(f"{service}: no replica is running")
        except nats.errors.TimeoutError:
            return _fail(f"{service}: no answer within {HEALTH_TIMEOUT:.0f} s")
    finally:
        await nc.close()
    answer = json.loads(reply.data or b"{}")
    if "data" not in answer:
        return _fail(f"{service}: {answer.get('error')}: {answer.get('message', '')}")
    pong = Pong.model_validate(answer["data"])
    typer.echo(json.dumps({"target": service, **pong.model_dump(mode="json")}))
    if pong.database == "ok" or live:
        return 0
    return _fail(f"{service}: replica {pong.instance} cannot reach its database")


@events_app.command("export")
def events_export(stream: str = typer.Option(..., "--stream", help="AUTH, CONVERSATIONS, NOTIFICATIONS or KB "
                                             "(or the service's name)."),
                  since: str = typer.Option(None, "--since", help="From this stream sequence (e.g. 1042) or "
                                            "RFC 3339 time (e.g. 2026-11-01T10:00:00Z) on; default: the start.")) -> None:
    """Write a stream's events to stdout, one envelope as JSON a line, in stream order (the log format of
    tests/replay/). Reads only: nothing changes on the server. A count goes to stderr."""
    from services.runtime.events_io import LogError, export_stream

    nats_url = _nats_url_announced()

    async def run() -> int:
        nc = await _connect(nats_url)
        try:
            return await export_stream(nc.jetstream(), stream, lambda line: sys.stdout.write(line + "\n"), since)
        except LogError as exc:
            raise typer.Exit(_fail(str(exc))) from None
        finally:
            await nc.close()

    count = asyncio.run(run())
    sys.stdout.flush()
    typer.echo(f"exported {count} event{'' if count == 1 else 's'}", err=True)


@events_app.command("import")
def events_import(log: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                             help="A log written by `portico events export` (JSON lines)."),
                  url: str = typer.Option(None, "--url", help="NATS server to import into (default: as the other "
                                          "commands choose it: PORTICO_NATS_URL, else the running `portico dev`).")
                  ) -> None:
    """Publish a log's events to their subjects, for a test server: each with `Nats-Msg-Id` = its id, so
    within the 2-minute duplicate window an event imported twice is stored once; later it is stored again
    and consumers apply it once (their inbox knows its id). The whole file is checked first: a line that
    is not an event envelope stops the import, naming the line, before anything is published."""
    from services.runtime.events_io import LogError, import_log, read_log
    from services.runtime.nats import ensure_streams

    try:
        with log.open(encoding="utf-8") as lines:
            events = read_log(lines)
    except (LogError, UnicodeDecodeError) as exc:
        raise typer.Exit(_fail(f"{log}: {exc}; nothing imported")) from None
    if url:
        typer.echo(f"NATS: {url} (--url)", err=True)
    nats_url = url or _nats_url_announced()

    async def run():  # type: ignore[no-untyped-def]
        nc = await _connect(nats_url)
        try:
            js = nc.jetstream()
            await ensure_streams(js, replicas=Settings(nats_url=nats_url).resolved_nats_replicas)
            return await import_log(js, events)
        finally:
            await nc.close()

    done = asyncio.run(run())
    typer.echo(f"imported {len(events)} events from {log}: {done.stored} stored, "
               f"{done.duplicates} already there")


@app.command()
def status(watch: bool = typer.Option(False, "--watch", help="Refresh until Ctrl-C."),
           interval: float = typer.Option(2.0, "--interval", help="Seconds between refreshes with --watch."),
           as_json: bool = typer.Option(False, "--json", help="One JSON object (with --watch: one a line).")) -> None:
    """Each service's replicas, database and outbox backlog, consumer lag, dead letters and failed
    notifications, on one screen.

    Exit 0 when every service answers with its database ok, 1 otherwise (a service down, a database
    error, NATS unreachable); with --watch it runs until Ctrl-C and exits 0. Replicas are counted from
    the NATS monitoring endpoint when PORTICO_NATS_MONITOR_URL is set, else they are the replicas seen
    answering pings (`services.runtime.status`).
    """
    from services.runtime.status import gather, render

    settings = Settings()
    nats_url = _nats_url_announced()
    monitors = [u.strip() for u in (settings.nats_monitor_url or "").split(",") if u.strip()]
    if interval <= 0:
        raise typer.Exit(_fail("--interval: give a number of seconds above 0"))

    async def run() -> int:
        nc = await _connect(nats_url)
        try:
            while True:
                reading = await gather(nc, nats_url, monitors)
                if as_json:
                    typer.echo(json.dumps(reading.as_dict()))
                else:
                    clear = "\x1b[H\x1b[2J" if watch and sys.stdout.isatty() else ""
                    typer.echo(clear + render(reading) + ("\n" if watch and not clear else ""))
                if not watch:
                    return 0 if reading.healthy else 1
                await asyncio.sleep(interval)
        finally:
            await nc.close()

    try:
        raise typer.Exit(asyncio.run(run()))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def asyncapi(out: Path = typer.Option(Path("docs/asyncapi"), help="Directory for one JSON document a service.")) -> None:
    """Write the AsyncAPI documents generated from the services' code."""
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(auth_database_url="sqlite://", conversations_database_url="sqlite://",
                        notifications_database_url="sqlite://", kb_database_url="sqlite://")
    for service in SERVICES:
        document = _service_module(service).build(settings).asyncapi()
        (out / f"{service}.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        typer.echo(f"wrote {out / (service + '.json')}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
