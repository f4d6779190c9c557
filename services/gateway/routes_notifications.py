"""Channel webhooks and failed or bounced notifications (admin) and, in development, the mail catcher's
listing."""

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.notifications import (
    ChannelWebhook,
    DevMailList,
    ListDevMail,
    ListNotifications,
    NotificationList,
    NotificationRetried,
    RetryNotification,
    SetChannelWebhook,
    WebhookChannel,
)
from contracts.states import NotificationStatus
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


@router.get("/api/v1/admin/notifications", response_model=NotificationList,
            summary="The organisation's e-mails and webhooks to customers in one status (failed ones by default), "
                    "newest first")
async def list_notifications(actor: AdminActor, rpc: Rpc, status: NotificationStatus = NotificationStatus.failed,
                             limit: int = Query(default=100, ge=1, le=1000)) -> NotificationList:
    return await rpc.call(operations.notifications.list_notifications,
                          ListNotifications(actor=actor, status=status, limit=limit))


@router.post("/api/v1/admin/notifications/{notification_id}/retry", response_model=NotificationRetried,
             summary="Try a failed notification again now, with a fresh count of tries")
async def retry_notification(actor: AdminActor, rpc: Rpc,
                             notification_id: str = Path(min_length=1, max_length=26)) -> NotificationRetried:
    return await rpc.call(operations.notifications.retry_notification,
                          RetryNotification(actor=actor, notification_id=notification_id))


@router.get("/dev/mail", response_model=DevMailList, summary="Development: the e-mails Portico sent, newest first")
async def dev_mail(request: Request, rpc: Rpc, limit: int = Query(default=50, ge=1, le=500)) -> DevMailList:
    if request.app.state.settings.env != "dev":
        raise ServiceError(ErrorCode.not_found, "No such resource.")
    return await rpc.call(operations.notifications.list_dev_mail, ListDevMail(limit=limit))
