"""The gateway's HTTP metrics and traces, and its `GET /metrics`.

`HttpMetrics` is a plain ASGI middleware (no `BaseHTTPMiddleware`): it counts each request in
`portico_http_requests_total` and times it in `portico_http_request_duration_seconds`, labelled by the
route's template (`/api/v1/conversations/{conversation_id}`, never the raw path, so no id becomes a
label; `unmatched` when no route answered), the method and the status. When tracing is on
(`services.runtime.tracing`) it also opens the request's server span, which RPC calls continue.
"""

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime import tracing
from services.runtime.metrics import HTTP_LATENCY, HTTP_REQUESTS, render

router = APIRouter(tags=["health"])

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@router.get("/metrics", summary="Prometheus metrics of this gateway process (text exposition format)",
            include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)


def route_template(scope: Scope) -> str:
    """The matched route's path template, e.g. `/api/v1/kb/{portal}/articles/{slug}`; `unmatched` when none."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


class HttpMetrics:
    """Counts and times every HTTP request by route template, method and status (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._observers: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if tracing.ENABLED:
                await self._traced(scope, receive, send_noting_status, lambda: status)
            else:
                await self.app(scope, receive, send_noting_status)
        finally:
            self._observe(scope, status, started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = route_template(scope)
        key = (route, method, status)
        observers = self._observers.get(key)
        if observers is None:  # label lookups once per route, method and status, not per request
            observers = self._observers[key] = (HTTP_LATENCY.labels(route, method),
                                                HTTP_REQUESTS.labels(route, method, str(status)))
        observers[0].observe(time.perf_counter() - started)
        observers[1].inc()

    async def _traced(self, scope: Scope, receive: Receive, send: Send, status: Any) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())
                   if k in (b"traceparent", b"tracestate")}
        with tracing.span(scope["method"], kind="SERVER", parent=headers,
                          attributes={"http.request.method": scope["method"]}) as span:
            try:
                await self.app(scope, receive, send)
            finally:
                route = route_template(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status())
