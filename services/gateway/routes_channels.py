"""Inbound channels: a provider adapter posts a customer's message, signed with the org's channel secret."""

from typing import Annotated

from fastapi import APIRouter, Header, Request

from contracts import operations
from contracts.conversations import InboundAccepted, InboundMessage, InboundPayload
from contracts.errors import ErrorCode, ServiceError
from contracts.events import Channel
from services.gateway.deps import Rpc
from services.gateway.uploads import JSON_LIMIT, read_capped

router = APIRouter(tags=["channels"])


@router.post("/api/v1/channels/{channel}/inbound", response_model=InboundAccepted,
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "schema": InboundPayload.model_json_schema()}}, "required": True}},
             summary="A customer's message from another channel; lands once, in the right conversation",
             description="Sign `<X-Portico-Timestamp>.<raw body>` with the org's channel secret (HMAC-SHA256) and "
                         "send `X-Portico-Signature: sha256=<hex>`. The timestamp (Unix seconds) must be within "
                         "5 minutes. A repeated `external_message_id` stores nothing new.")
async def inbound(request: Request, rpc: Rpc, channel: Channel,
                  org: Annotated[str, Header(alias="X-Portico-Org", max_length=26)] = "",
                  timestamp: Annotated[str, Header(alias="X-Portico-Timestamp", max_length=20)] = "",
                  signature: Annotated[str, Header(alias="X-Portico-Signature", max_length=200)] = "") -> InboundAccepted:
    if channel == "portal":
        raise ServiceError(ErrorCode.invalid_request, "The portal channel is the portal itself, not an inbound channel.")
    if not (org and timestamp and signature):
        raise ServiceError(ErrorCode.invalid_signature,
                           "Send X-Portico-Org, X-Portico-Timestamp and X-Portico-Signature.")
    raw = await read_capped(request, JSON_LIMIT)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServiceError(ErrorCode.invalid_request, "The body is not UTF-8 JSON.") from exc
    return await rpc.call(operations.conversations.inbound_message, InboundMessage(
        channel=channel, org_id=org, timestamp=timestamp, signature=signature, raw_body=text))
