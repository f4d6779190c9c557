"""`/healthz` and `/readyz`."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Ping
from contracts.subjects import SERVICES
from services.gateway.deps import Rpc
from services.gateway.errors import UNAVAILABLE_RETRY_AFTER

router = APIRouter(tags=["health"])

# A readiness probe answers within a second (Kubernetes' default probe timeout): a service that has
# not answered by then is reported down.
READY_TIMEOUT = 0.9


@router.get("/healthz", summary="The gateway and its NATS connection are up; `down` names what is not")
async def healthz(request: Request) -> JSONResponse:
    connected = request.app.state.is_connected()
    down = [] if connected else ["nats"]
    if connected and not request.app.state.has_sessions():
        down.append("sessions_bucket")
    body = {"status": "degraded" if down else "ok", "nats": "connected" if connected else "disconnected",
            "down": down}
    return _answer(body, ok=not down)


@router.get("/readyz", summary="Every service answers over NATS and reaches its database, per service")
async def readyz(request: Request, rpc: Rpc) -> JSONResponse:
    if not request.app.state.is_connected():
        down = {"status": "down", "error": ErrorCode.service_unavailable.value,
                "message": "The message bus is unreachable."}
        return _answer({"status": "not_ready", "down": ["nats"], "services": dict.fromkeys(SERVICES, down)},
                       ok=False)

    async def probe(service: str) -> dict[str, object]:
        try:
            pong = await rpc.call(operations.ping(service), Ping(), timeout=READY_TIMEOUT)
        except ServiceError as exc:
            return {"status": "down", "error": exc.code.value, "message": exc.message}
        return {"status": "ok" if pong.database == "ok" else "degraded", "instance": pong.instance,
                "database": pong.database, "outbox_pending": pong.outbox_pending}

    results = await asyncio.gather(*(probe(s) for s in SERVICES))
    services = dict(zip(SERVICES, results, strict=True))
    down = [name for name, result in services.items() if result["status"] != "ok"]
    return _answer({"status": "not_ready" if down else "ready", "down": down, "services": services}, ok=not down)


def _answer(body: dict[str, object], *, ok: bool) -> JSONResponse:
    if ok:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})
