"""Dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from services.runtime.rpc import RpcClient


def get_rpc(request: Request) -> RpcClient:
    return request.app.state.rpc


Rpc = Annotated[RpcClient, Depends(get_rpc)]
