"""conversations' composition root."""

from functools import partial

from contracts import conversations as rpc
from contracts.events import (
    ConversationClosed,
    ConversationCreated,
    ConversationReopened,
    EmailBounced,
    EmailReceived,
    IdentityLinked,
    MessagePosted,
    MessageRedacted,
    ReporterChanged,
    UserRegistered,
)
from services.conversations import admin, agent, attachments, consumers, customer, idempotency, inbound, redaction
from services.conversations.models import Customer
from services.runtime.inbox import Subscription
from services.runtime.objects import ATTACHMENTS_BUCKET, ensure_object_store
from services.runtime.service import Service
from services.runtime.settings import Settings


async def open_attachments(service: Service) -> None:
    await ensure_object_store(service.broker.config.connection_state.stream, ATTACHMENTS_BUCKET,
                              description="Message attachments")


async def prune_idempotency_keys(service: Service) -> None:
    await service.transaction(idempotency.prune)


def build(settings: Settings | None = None, **overrides: object) -> Service:
    settings = settings or Settings()
    service = Service(
        "conversations", settings,
        produces=(ConversationCreated, MessagePosted, ConversationReopened, ConversationClosed, MessageRedacted,
                  ReporterChanged),
        subscriptions=(Subscription("auth", {UserRegistered: consumers.record_customer,
                                             IdentityLinked: consumers.link_identity}),
                       Subscription("notifications", {EmailReceived: consumers.email_received,
                                                      EmailBounced: consumers.email_bounced})),
        read_models=(Customer,),
        **overrides,  # type: ignore[arg-type]
    )
    service.on_start(open_attachments)
    service.every(600, attachments.delete_orphans)
    service.every(3600, prune_idempotency_keys)
    endpoints = {
        "message_limits": (rpc.GetMessageLimits, partial(customer.message_limits, settings)),
        "portal_features": (rpc.GetPortalFeatures, partial(customer.portal_features, settings)),
        "list_conversations": (rpc.ListConversations, customer.list_conversations),
        "get_conversation": (rpc.GetConversation, customer.get_conversation),
        "start_conversation": (rpc.StartConversation, partial(customer.start_conversation, settings)),
        "post_message": (rpc.PostMessage, partial(customer.post_message, settings)),
        "reopen_conversation": (rpc.ReopenConversation, customer.reopen_conversation),
        "attachment_file": (rpc.GetAttachment, attachments.attachment_file),
        "agent_inbox": (rpc.AgentInbox, agent.inbox),
        "agent_get_conversation": (rpc.AgentGetConversation, agent.get_conversation),
        "agent_post_message": (rpc.AgentPostMessage, partial(agent.post_message, settings)),
        "agent_close": (rpc.AgentAction, agent.close),
        "agent_reopen": (rpc.AgentAction, agent.reopen),
        "agent_change_subject": (rpc.AgentChangeSubject, agent.change_subject),
        "agent_assign": (rpc.AgentAssign, agent.assign),
        "agent_set_attributes": (rpc.AgentSetAttributes, agent.set_attributes),
        "agent_redact": (rpc.AgentRedact, redaction.redact),
        "get_settings": (rpc.GetConversationSettings, admin.get_settings),
        "update_settings": (rpc.UpdateConversationSettings, admin.update_settings),
        "rotate_channel_secret": (rpc.RotateChannelSecret, admin.rotate_channel_secret),
        "inbound_message": (rpc.InboundMessage, inbound.receive),
    }
    reads = {"message_limits", "portal_features", "list_conversations", "attachment_file", "agent_inbox", "agent_get_conversation"}
    for operation, (request, handler) in endpoints.items():
        service.rpc(operation, request, read_only=operation in reads)(handler)
    return service
