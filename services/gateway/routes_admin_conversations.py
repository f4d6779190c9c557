"""Admin API for conversations: a portal's conversation settings and the org's inbound channel secret."""

from fastapi import APIRouter

from contracts import operations
from contracts.conversations import (
    ChannelSecret,
    ConversationSettings,
    ConversationSettingsView,
    GetConversationSettings,
    RotateChannelSecret,
    UpdateConversationSettings,
)
from services.gateway.auth import AdminActor
from services.gateway.deps import PortalSlug, Rpc

router = APIRouter(tags=["admin"])


@router.get("/api/v1/admin/portals/{portal}/conversation-settings", response_model=ConversationSettingsView,
            summary="My Conversations, reopen policy, detail attributes and message limits")
async def get_settings(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> ConversationSettingsView:
    return await rpc.call(operations.conversations.get_settings, GetConversationSettings(actor=actor, portal=portal))


@router.patch("/api/v1/admin/portals/{portal}/conversation-settings", response_model=ConversationSettingsView,
              summary="Change conversation settings; omitted fields stay as they are")
async def update_settings(body: ConversationSettings, actor: AdminActor, rpc: Rpc,
                          portal: str = PortalSlug) -> ConversationSettingsView:
    return await rpc.call(operations.conversations.update_settings,
                          UpdateConversationSettings(actor=actor, portal=portal, settings=body))


@router.post("/api/v1/admin/channels/secret", status_code=201, response_model=ChannelSecret,
             summary="New secret for signing inbound channel requests (shown once; the old one works for a day)")
async def rotate_channel_secret(actor: AdminActor, rpc: Rpc) -> ChannelSecret:
    return await rpc.call(operations.conversations.rotate_channel_secret, RotateChannelSecret(actor=actor))
