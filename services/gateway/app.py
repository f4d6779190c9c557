"""The gateway's composition root: FastAPI app, NATS client, middleware, routes."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from faststream.nats import NatsBroker
from nats.js.kv import KeyValue
from tenacity import AsyncRetrying, wait_exponential

from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.sessions import MAX_SESSION_DAYS, SESSIONS_BUCKET
from services.gateway import (
    routes_admin,
    routes_admin_conversations,
    routes_admin_kb,
    routes_agent,
    routes_channels,
    routes_conversations,
    routes_health,
    routes_kb,
    routes_login,
    routes_notifications,
    routes_session,
)
from services.gateway.errors import install_error_handlers
from services.runtime.kv import ensure_bucket
from services.runtime.logging import correlation_id, get_logger
from services.runtime.nats import CONNECT_OPTIONS
from services.runtime.rpc import RpcClient
from services.runtime.settings import Settings

log = get_logger("portico.gateway")

REQUEST_ID_HEADER = "X-Request-Id"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    broker = NatsBroker(settings.resolved_nats_url, logger=None, **CONNECT_OPTIONS)

    buckets: dict[str, KeyValue] = {}

    async def connect() -> None:
        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.2, max=2)):
            with attempt:
                await broker.connect()
                buckets["sessions"] = await ensure_bucket(
                    broker.config.connection_state.stream, SESSIONS_BUCKET,
                    ttl_seconds=MAX_SESSION_DAYS * 86400, description="Portico sign-in sessions")
        log.info("gateway connected to NATS")

    def sessions() -> KeyValue:
        if "sessions" not in buckets:
            raise ServiceError(ErrorCode.service_unavailable, "Not connected to the message bus yet.")
        return buckets["sessions"]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The HTTP side comes up at once; /healthz says whether NATS is there yet.
        connecting = asyncio.create_task(connect())
        yield
        connecting.cancel()
        try:
            await asyncio.wait_for(broker.stop(), timeout=3)
        except Exception as exc:
            log.warning("broker stop failed", error=repr(exc))

    app = FastAPI(title="Portico", version="0.1.0", lifespan=lifespan,
                  description="Customer-support portal: sign-in, conversations, knowledge base.")
    app.state.settings = settings
    app.state.broker = broker
    app.state.rpc = RpcClient(broker, timeout=settings.rpc_timeout)
    app.state.sessions = sessions
    app.state.is_connected = lambda: bool(broker._connection and broker._connection.is_connected)

    @app.middleware("http")
    async def correlate(request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        value = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else new_id()
        token = correlation_id.set(value)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            correlation_id.reset(token)
        response.headers[REQUEST_ID_HEADER] = value
        log.info("request", method=request.method, path=request.url.path, status=response.status_code,
                 duration_ms=round((time.perf_counter() - started) * 1000, 2), correlation_id=value)
        return response

    install_error_handlers(app)
    app.include_router(routes_health.router)
    app.include_router(routes_session.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_login.router)
    app.include_router(routes_conversations.router)
    app.include_router(routes_agent.router)
    app.include_router(routes_channels.router)
    app.include_router(routes_admin_conversations.router)
    app.include_router(routes_notifications.router)
    app.include_router(routes_kb.router)
    app.include_router(routes_admin_kb.router)
    return app
