"""Channel webhooks (admin) and, in development, the mail catcher's listing."""

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.notifications import ChannelWebhook, DevMailList, ListDevMail, SetChannelWebhook, WebhookChannel
from services.gateway.auth import AdminActor
from services.gateway.deps import Rpc

router = APIRouter(tags=["notifications"])


class WebhookBody(BaseModel):
    url: str = Field(min_length=8, max_length=2000, examples=["https://adapter.example.com/portico/whatsapp"])


@router.put("/api/v1/admin/channels/{channel}/webhook", response_model=ChannelWebhook,
            summary="Where answers on a channel go (the company's provider adapter); a new signing secret each time")
async def set_webhook(channel: WebhookChannel, body: WebhookBody, actor: AdminActor, rpc: Rpc) -> ChannelWebhook:
    return await rpc.call(operations.notifications.set_channel_webhook,
                          SetChannelWebhook(actor=actor, channel=channel, url=body.url))


@router.get("/dev/mail", response_model=DevMailList, summary="Development: the e-mails Portico sent, newest first")
async def dev_mail(request: Request, rpc: Rpc, limit: int = Query(default=50, ge=1, le=500)) -> DevMailList:
    if request.app.state.settings.env != "dev":
        raise ServiceError(ErrorCode.not_found, "No such resource.")
    return await rpc.call(operations.notifications.list_dev_mail, ListDevMail(limit=limit))
