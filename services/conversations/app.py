"""conversations' composition root."""

from functools import partial

from contracts import operations
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
from services.conversations import (
    admin,
    agent,
    attachments,
    consumers,
    customer,
    idempotency,
    inbound,
    queries,
    redaction,
)
from services.conversations.models import Customer
from services.runtime.inbox import Subscription
from services.runtime.objects import ATTACHMENTS_BUCKET, ensure_object_store
from services.runtime.service import Service
from services.runtime.settings import Settings


async def open_attachments(service: Service) -> None:
    await ensure_object_store(service.broker.config.connection_state.stream, ATTACHMENTS_BUCKET,
                              description="Message attachments", replicas=service.settings.resolved_nats_replicas)


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
    service.on_start(admin.listen_for_settings_changes)
    service.every(600, attachments.delete_orphans)
    service.every(3600, prune_idempotency_keys)
    endpoints = {
        operations.conversations.message_limits: partial(queries.message_limits, settings),
        operations.conversations.portal_features: partial(queries.portal_features, settings),
        operations.conversations.list_conversations: queries.list_conversations,
        operations.conversations.get_conversation: queries.get_conversation,
        operations.conversations.start_conversation: partial(customer.start_conversation, settings),
        operations.conversations.post_message: partial(customer.post_message, settings),
        operations.conversations.reopen_conversation: customer.reopen_conversation,
        operations.conversations.attachment_file: attachments.attachment_file,
        operations.conversations.agent_inbox: queries.inbox,
        operations.conversations.agent_get_conversation: queries.agent_conversation,
        operations.conversations.list_assignees: queries.assignees,
        operations.conversations.agent_post_message: partial(agent.post_message, settings),
        operations.conversations.agent_close: agent.close,
        operations.conversations.agent_reopen: agent.reopen,
        operations.conversations.agent_change_subject: agent.change_subject,
        operations.conversations.agent_assign: agent.assign,
        operations.conversations.agent_set_attributes: agent.set_attributes,
        operations.conversations.agent_redact: redaction.redact,
        operations.conversations.get_settings: admin.get_settings,
        operations.conversations.update_settings: admin.update_settings,
        operations.conversations.rotate_channel_secret: admin.rotate_channel_secret,
        operations.conversations.inbound_message: inbound.receive,
    }
    service.answer_all(endpoints)
    return service
