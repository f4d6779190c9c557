"""`/healthz` and `/readyz`."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contracts.errors import ServiceError
from contracts.rpc import Ping, Pong
from contracts.subjects import SERVICES
from services.gateway.deps import Rpc

router = APIRouter(tags=["health"])

READY_TIMEOUT = 2.0


@router.get("/healthz", summary="The gateway and its NATS connection are up")
async def healthz(request: Request) -> JSONResponse:
    connected = request.app.state.is_connected()
    body = {"status": "ok" if connected else "degraded", "nats": "connected" if connected else "disconnected"}
    return JSONResponse(body, status_code=200 if connected else 503)


@router.get("/readyz", summary="Every service answers over NATS, with per-service status")
async def readyz(rpc: Rpc) -> JSONResponse:
    async def probe(service: str) -> dict[str, object]:
        try:
            pong = await rpc.call(service, "ping", Ping(), Pong, timeout=READY_TIMEOUT)
        except ServiceError as exc:
            return {"status": "down", "error": exc.code.value, "message": exc.message}
        return {"status": "ok", "instance": pong.instance, "database": pong.database,
                "outbox_pending": pong.outbox_pending}

    results = await asyncio.gather(*(probe(s) for s in SERVICES))
    services = dict(zip(SERVICES, results, strict=True))
    ready = all(r["status"] == "ok" for r in results)
    return JSONResponse({"status": "ready" if ready else "not_ready", "services": services},
                        status_code=200 if ready else 503)
