"""Dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Path, Request

from services.runtime.rpc import RpcClient


async def get_rpc(request: Request) -> RpcClient:
    """The app's service client. A coroutine: FastAPI runs a plain `def` dependency in a worker thread,
    which costs more than the lookup itself."""
    return request.app.state.rpc


Rpc = Annotated[RpcClient, Depends(get_rpc)]


PortalSlug = Path(description="Portal slug", min_length=1, max_length=100, examples=["demo"])
