"""The gateway's composition root: FastAPI app, NATS client, middleware, routes."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from faststream.nats import NatsBroker
from nats.js.kv import KeyValue
from tenacity import AsyncRetrying, wait_exponential

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
    routes_notifications,
    routes_session,
)
from services.gateway.auth import ApiKeyCache, SessionCache
from services.gateway.edge import CrossSiteGuard, RequestLog, client_address
from services.gateway.metrics import HttpMetrics
from services.gateway.metrics import router as metrics_router
from services.gateway.errors import install_error_handlers
from services.gateway.live import LiveFeed
from services.gateway.session_policies import SessionPolicies
from services.gateway.routes_docs import install_docs
from services.gateway.web import install_pages
from services.runtime.kv import ensure_bucket
from services.runtime import tracing
from services.runtime.logging import get_logger
from services.runtime.nats import CONNECT_OPTIONS
from services.runtime.rpc import RpcClient, bus_connected
from services.runtime.settings import Settings

log = get_logger("portico.gateway")

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    tracing.configure_from_env("gateway")
    broker = NatsBroker(settings.nats_servers, logger=None, **CONNECT_OPTIONS)

    buckets: dict[str, KeyValue] = {}
    session_cache = SessionCache()
    session_policies = SessionPolicies(on_change=session_cache.forget_portal)
    live = LiveFeed()
    api_keys = ApiKeyCache()
    listening: list[bool] = []

    async def connect() -> None:
        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.2, max=2)):
            with attempt:
                await broker.connect()
                # Policies first: no session is read before its portal's current lifetime is known.
                await session_policies.follow(broker.config.connection_state.stream,
                                              replicas=settings.resolved_nats_replicas)
                buckets["sessions"] = await ensure_bucket(
                    broker.config.connection_state.stream, SESSIONS_BUCKET,
                    ttl_seconds=MAX_SESSION_DAYS * 86400, description="Portico sign-in sessions",
                    replicas=settings.resolved_nats_replicas)
                # Live updates follow the conversations' events in the background (services.gateway.live).
                await live.start(broker.config.connection_state.stream)
                if not listening:  # nats-py subscribes again by itself after a reconnect
                    await api_keys.listen(broker.connection)
                    await session_cache.listen(broker.connection)
                    listening.append(True)
        log.info("gateway connected to NATS")

    def sessions() -> KeyValue:
        if "sessions" not in buckets or not bus_connected(broker):
            # Reading the bucket while the client reconnects would wait for a timeout: answer at once.
            raise ServiceError(ErrorCode.service_unavailable, "The message bus is unreachable; try again shortly.")
        return buckets["sessions"]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The HTTP side comes up at once; /healthz says whether NATS is there yet.
        connecting = asyncio.create_task(connect())
        yield
        connecting.cancel()
        await session_policies.stop()
        await live.stop()
        try:
            await asyncio.wait_for(broker.stop(), timeout=3)
        except Exception as exc:
            log.warning("broker stop failed", error=repr(exc))

    # No redirect_slashes: `/api/v1/session/` is a JSON 404, not an empty redirect. Docs from local files.
    # No OpenTelemetry: nothing here exports it, and FastAPI would look for providers on every request.
    app = FastAPI(title="Portico", version="0.1.0", lifespan=lifespan, redirect_slashes=False,
                  docs_url=None, redoc_url=None, telemetry=NO_TELEMETRY,
                  description="Customer-support portal: sign-in, conversations, knowledge base.")
    app.state.settings = settings
    app.state.broker = broker
    app.state.rpc = RpcClient(broker, timeout=settings.rpc_timeout)
    app.state.sessions = sessions
    app.state.session_policies = session_policies
    app.state.session_cache = session_cache
    app.state.live = live
    app.state.api_keys = api_keys
    app.state.is_connected = lambda: bus_connected(broker)
    app.state.has_sessions = lambda: "sessions" in buckets

    # Each wraps the ones added before it: a request meets the client's address first, then its id
    # and log line, then the cross-site check.
    app.add_middleware(CrossSiteGuard, public_url=settings.resolved_public_url)
    app.add_middleware(RequestLog)
    app.add_middleware(client_address, trusted_proxies=settings.trusted_proxy_list)
    app.add_middleware(HttpMetrics)  # outermost: counts and times every answer, refusals included

    install_error_handlers(app)
    install_docs(app)
    # The JSON API's routes go straight into the app's route list (an included router is matched twice per
    # request, and each router before it once), the most requested first: no two routers' paths overlap,
    # so their order decides nothing but how many routes a request is matched against.
    for router in (routes_session.router, routes_conversations.router, routes_kb.router, routes_agent.router,
                   routes_health.router, metrics_router, routes_admin.router, routes_channels.router,
                   routes_admin_conversations.router, routes_notifications.router, routes_admin_kb.router):
        app.router.routes.extend(router.routes)
    install_pages(app)
    return app
