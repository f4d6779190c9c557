"""A Portico service process: its database, its stream, RPC endpoints, outbox relay and consumers.

Each service's `app.py` builds one of these (the composition root) and `__main__` serves it.
"""

import asyncio
import contextlib
import inspect
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from faststream.specification import AsyncAPI
from sqlmodel import Session, SQLModel, delete, text
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from contracts.envelope import Event, envelope_model, new_id
from contracts import operations
from contracts.operations import Operation
from contracts.rpc import Ping, Pong, Reply
from services.runtime import tracing
from services.runtime.db import READ_ONLY, make_engine, session_scope
from services.runtime.inbox import InboxConsumer, Subscription, replay_stream
from services.runtime.logging import correlation_id, get_logger
from services.runtime.metrics import RpcTimer, ServiceObserver, outcome_of
from services.runtime.nats import (
    CONNECT_OPTIONS,
    dlq_stream_config,
    ensure_stream,
    stream_config,
)
from services.runtime.outbox import OUTBOX_WRITTEN, OutboxRelay, pending_count
from services.runtime.rpc import RequestMessage, RpcClient, data_body, serve
from services.runtime.settings import Settings

log = get_logger("portico.service")

T = TypeVar("T")
NO_SPAN = contextlib.nullcontext()  # in place of a span while tracing is off

# Seconds the readiness check gives the database; the gateway's /readyz waits 0.9 s for the answer.
DATABASE_CHECK_TIMEOUT = 0.5


class Service:
    def __init__(self, name: str, settings: Settings, *, produces: tuple[type[Event], ...] = (),
                 subscriptions: tuple[Subscription, ...] = (), read_models: tuple[type[SQLModel], ...] = (),
                 database_url: str | None = None, relay_enabled: bool = True) -> None:
        self.name = name
        self.settings = settings
        self.instance = new_id()
        self.engine = make_engine(database_url or settings.database_url(name))
        self.broker = NatsBroker(settings.nats_servers, logger=None, **CONNECT_OPTIONS)
        self.relay = OutboxRelay(self.engine, lambda: self.broker.connection,
                                 batch=settings.relay_batch, poll_interval=settings.relay_poll_interval,
                                 linger=settings.relay_linger,
                                 retention=timedelta(hours=settings.outbox_retention_hours))
        self.relay_enabled = relay_enabled
        self.client = RpcClient(self.broker, timeout=settings.rpc_timeout)  # for calls to other services
        self.read_models = read_models
        self.consumers = [
            InboxConsumer(self.engine, _named(subscription, name), lambda: self.broker.config.connection_state.stream,
                          after_commit=self._events_applied, max_deliver=settings.max_deliver,
                          backoff=settings.redelivery_backoff, batch=settings.consumer_batch,
                          ack_wait=settings.consumer_ack_wait,
                          retention=timedelta(hours=settings.inbox_retention_hours))
            for subscription in subscriptions
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._start_hooks: list[Callable[[Service], Awaitable[None]]] = []
        self._periodic: list[Callable[[], Awaitable[None]]] = []
        self._stop_hooks: list[Callable[[Service], Awaitable[None]]] = []
        self._event_listeners: list[Callable[[], None]] = []
        self.resources: dict[str, Any] = {}
        self._started_at = time.monotonic()
        self.observer = ServiceObserver(self, settings.metrics_host, settings.metrics_port)
        tracing.configure_from_env(name)
        self.produces = produces
        self.served: dict[str, Operation] = {}
        # Each served operation's request handler and its description (for the AsyncAPI document).
        self._responders: list[tuple[Operation, Callable[[Msg], Awaitable[bytes]], str | None]] = []
        self._rpc_subscriptions: list[NatsSubscription] = []
        self._rpc_tasks: set[asyncio.Task[None]] = set()
        self.answer(operations.ping(self.name), self._ping)

    # -- RPC --------------------------------------------------------------------------

    def answer(self, operation: Operation, handler: Callable[..., Reply]) -> None:
        """Answer `operation` (declared in `contracts.operations`, for this service) with `handler`.

        A plain `handler(session, request) -> Reply` runs in a worker thread inside one transaction,
        committed after it returns; outbox rows it added are published right after the commit
        (`operation.read_only`: a read transaction, which on SQLite neither takes nor waits for the
        write lock). An `async handler(service, request) -> Reply` does its own I/O
        (`service.transaction`, KV). Requests are handled one at a time per replica unless the
        operation is `read_only` or `concurrent`: then up to `PORTICO_RPC_CONCURRENCY` run at once.
        Raises ValueError for another service's operation or one served twice.
        """
        if operation.service != self.name:
            raise ValueError(f"{operation!r} belongs to the {operation.service} service, not {self.name}")
        if operation.name in self.served:
            raise ValueError(f"{operation!r} is served twice")
        self.served[operation.name] = operation
        is_async = inspect.iscoroutinefunction(handler)
        read_only = operation.read_only

        timer = RpcTimer(self.name, operation.name)
        span_name = f"{self.name}.{operation.name}"
        read_request = operation.request.model_validate_json

        # Served on a plain nats-py subscription (`rpc.serve`, from `start`): the request is read from JSON
        # in one pass, the reply written as JSON bytes. A request that does not validate is answered
        # `invalid_request` before it is timed, as FastStream's own validation did.
        async def respond(msg: Msg) -> bytes:
            request = read_request(msg.data)
            headers = msg.headers
            sent_id = headers.get("correlation_id") if headers else None
            token = correlation_id.set(sent_id or new_id())
            started, outcome = time.perf_counter(), "ok"
            span = tracing.span(span_name, kind="SERVER", parent=headers) if tracing.ENABLED else NO_SPAN
            try:
                with span:
                    if is_async:
                        reply = await self._answer_async(handler, request, msg, sent_id)
                    elif read_only:
                        reply = await self.read(handler, request)
                    else:
                        reply = await self.transaction(handler, request)
            except Exception as exc:
                outcome = outcome_of(exc)
                raise
            finally:
                timer.observe(time.perf_counter() - started, outcome)
                correlation_id.reset(token)
            return data_body(reply)

        self._responders.append((operation, respond, inspect.getdoc(handler)))

    async def _answer_async(self, handler: Callable[..., Awaitable[Reply]], request: Any, msg: Msg,
                            sent_id: str | None) -> Reply:
        """`await handler(self, request)` with the request in the broker's context (`message`, a
        `RequestMessage`): a handler that clears its `reply_to` sends the answer itself."""
        message = RequestMessage(msg.reply, sent_id, msg.headers)
        context = self.broker.context
        token = context.set_local("message", message)
        try:
            return await handler(self, request)
        finally:
            context.reset_local("message", token)
            if not message.reply_to:
                msg.reply = ""

    def answer_all(self, endpoints: dict[Operation, Callable[..., Reply]]) -> None:
        """`answer` each operation of a service's composition root with its handler."""
        for operation, handler in endpoints.items():
            self.answer(operation, handler)

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(session, *args)` in a worker thread, in one committed transaction; then publish its events."""
        def run() -> tuple[T, bool]:
            with session_scope(self.engine) as session:
                result = fn(session, *args)
                return result, bool(session.info.get(OUTBOX_WRITTEN))

        result, wrote_events = await asyncio.to_thread(run)
        if wrote_events:
            self.relay.wake()
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(session, *args)` in a worker thread, read-only: no write lock, nothing committed."""
        def run() -> T:
            with Session(self.engine.execution_options(**READ_ONLY)) as session:
                return fn(session, *args)

        return await asyncio.to_thread(run)

    def on_start(self, hook: Callable[["Service"], Awaitable[None]]) -> None:
        """Run `await hook(service)` once connected, before requests are served (KV buckets, ...)."""
        self._start_hooks.append(hook)

    def after_events(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (in the event loop) after each committed batch of consumed events."""
        self._event_listeners.append(listener)

    def _events_applied(self) -> None:
        self.relay.wake()
        for listener in self._event_listeners:
            listener()

    def on_stop(self, hook: Callable[["Service"], Awaitable[None]]) -> None:
        """Run `await hook(service)` when the service stops, before it disconnects from NATS."""
        self._stop_hooks.append(hook)

    def background(self, job: Callable[["Service"], Awaitable[None]]) -> None:
        """Run `await job(service)` as a task for as long as the service runs (cancelled on stop)."""
        self._periodic.append(lambda: job(self))

    def every(self, seconds: float, job: Callable[["Service"], Awaitable[None]]) -> None:
        """Run `await job(service)` every `seconds` while the service runs; a failure is logged, never fatal."""
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job(self)
                except Exception as exc:
                    log.warning("periodic job failed", service=self.name, job=job.__name__, error=repr(exc))

        self._periodic.append(loop)

    @staticmethod
    async def _ping(service: "Service", _: Ping) -> Pong:
        # Readiness: this replica answers, and its database answers a `SELECT 1` and the outbox count
        # within DATABASE_CHECK_TIMEOUT seconds (a read transaction: it waits for no writer). A failing
        # database is reported as `database: "error"` (with `outbox_pending` 0), not as silence.
        # (A comment, not a docstring: the docstring would become the endpoint's AsyncAPI description.)
        def check() -> int:
            with Session(service.engine.execution_options(**READ_ONLY)) as session:
                session.exec(text("SELECT 1"))
                return pending_count(session)

        try:
            pending = await asyncio.wait_for(asyncio.to_thread(check), timeout=DATABASE_CHECK_TIMEOUT)
        except Exception as exc:
            log.warning("database check failed", service=service.name, error=repr(exc))
            return Pong(service=service.name, instance=service.instance, database="error", outbox_pending=0)
        return Pong(service=service.name, instance=service.instance, database="ok", outbox_pending=pending)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.2, max=2),
                                           retry=retry_if_exception_type(Exception), reraise=True):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.warning("waiting for NATS", service=self.name, attempt=attempt.retry_state.attempt_number)
                await self.broker.connect()
        js = self.broker.config.connection_state.stream
        replicas = self.settings.resolved_nats_replicas
        await ensure_stream(js, stream_config(self.name, replicas))
        await ensure_stream(js, dlq_stream_config(replicas))
        for consumer in self.consumers:
            await ensure_stream(js, stream_config(consumer.subscription.source, replicas))
        for hook in self._start_hooks:
            await hook(self)
        await self.broker.start()
        for operation, respond, _ in self._responders:
            concurrent = operation.read_only or operation.concurrent
            self._rpc_subscriptions.append(await serve(
                self.broker.connection, operation.subject, self.name, respond,
                concurrency=self.settings.rpc_concurrency if concurrent else None, tasks=self._rpc_tasks))
        # The server has our subscriptions once this round trip returns: "started" means requests are answered.
        await self.broker.connection.flush(timeout=5)
        if self.relay_enabled:
            self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))
        for consumer in self.consumers:
            self._tasks.append(asyncio.create_task(consumer.run(), name=consumer.name))
        for periodic in self._periodic:
            self._tasks.append(asyncio.create_task(periodic(), name=f"{self.name}-periodic"))
        await self.observer.start()
        log.info("service started", service=self.name, instance=self.instance,
                 consumers=[c.name for c in self.consumers])

    async def stop(self) -> None:
        await self.observer.stop()
        for subscription in self._rpc_subscriptions:
            with contextlib.suppress(Exception):  # already disconnected
                await subscription.unsubscribe()
        self._rpc_subscriptions.clear()
        await _cancel(list(self._rpc_tasks), service=self.name)
        for consumer in self.consumers:
            consumer.stop()
        await _cancel(self._tasks, service=self.name)
        self._tasks.clear()
        await asyncio.gather(*(consumer.close() for consumer in self.consumers))
        for hook in self._stop_hooks:
            try:
                await hook(self)
            except Exception as exc:
                log.warning("stop hook failed", service=self.name, hook=hook.__name__, error=repr(exc))
        try:
            # Bounded: when NATS is going away at the same moment, draining could wait forever.
            await asyncio.wait_for(self.broker.stop(), timeout=2)
        except Exception as exc:  # already disconnected
            log.warning("broker stop failed", error=repr(exc))
        self.engine.dispose()
        log.info("service stopped", service=self.name, instance=self.instance)

    async def serve(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        await self.stop()

    async def replay(self, *, rebuild: bool = False) -> int:
        """Apply every event of the streams this service consumes, from the first one.

        Without `rebuild` the inbox skips what was applied already, so it only fills gaps, among the
        events stored within the inbox retention (`InboxConsumer.replay_since`; older ones may have
        lost their inbox rows). With it, the read models and the inbox are emptied first and rebuilt
        from the whole streams. Needs a NATS connection (`start` not required).
        """
        if rebuild:
            with session_scope(self.engine) as session:
                for model in self.read_models:
                    session.exec(delete(model))  # type: ignore[call-overload]
                for consumer in self.consumers:
                    consumer.reset(session)
        js = self.broker.config.connection_state.stream
        applied = 0
        for consumer in self.consumers:
            applied += await replay_stream(js, consumer, since=None if rebuild else consumer.replay_since())
        return applied

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI document of the events this service produces and the operations it answers.

        Built on a broker of its own that is never connected: the events are sent by the outbox relay and
        the requests answered on plain subscriptions (`start`), neither of them through FastStream.
        """
        broker = NatsBroker(self.settings.nats_servers, logger=None)
        for event in self.produces:
            broker.publisher(event.subject(), title=f"{event.subject()}:{event.type_name()}",
                             description=inspect.getdoc(event), schema=envelope_model(event))
        for operation, _, description in self._responders:
            async def endpoint(request: Any) -> dict:
                raise NotImplementedError  # declared, never called

            endpoint.__annotations__["request"] = operation.request
            endpoint.__name__ = operation.name
            workers = ({"max_workers": self.settings.rpc_concurrency}
                       if (operation.read_only or operation.concurrent) else {})
            broker.subscriber(operation.subject, queue=self.name, **workers, title=operation.subject,
                              description=description)(endpoint)
        spec = AsyncAPI(broker, title=f"Portico {self.name}", version="1.0.0",
                        description=f"Events and request/reply endpoints of the {self.name} service.")
        return spec.to_specification().to_jsonable()


async def _cancel(tasks: list[asyncio.Task[Any]], *, service: str, within: float = 2.0) -> None:
    """Cancel the tasks and wait for them, cancelling again those that carry on.

    A cancellation can be lost inside a library (a wait that completes at the moment it is
    cancelled returns its result instead), leaving a task in a fetch until that fetch's own
    timeout; asking again ends it at its next wait.
    """
    pending = {task for task in tasks if not task.done()}
    deadline = time.monotonic() + within
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    if pending:
        log.warning("tasks did not stop", service=service, tasks=sorted(task.get_name() for task in pending))
    await asyncio.gather(*(task for task in tasks if task.done()), return_exceptions=True)


def _named(subscription: Subscription, service: str) -> Subscription:
    subscription.consumer = subscription.consumer or f"{service}-from-{subscription.source}"
    return subscription
