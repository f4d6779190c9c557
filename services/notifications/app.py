"""notifications' composition root."""

import asyncio
from functools import partial

from contracts import operations
from contracts.events import (
    ConversationCreated,
    EmailBounced,
    EmailReceived,
    MessagePosted,
    MessageRedacted,
    NotificationFailed,
    NotificationSent,
    ReporterChanged,
    UserRegistered,
)
from services.notifications import admin, consumers, inbound, mail
from services.notifications.models import Conversation, Customer, Participant
from services.notifications.outbound import Sender
from services.runtime.inbox import Subscription
from services.runtime.objects import ATTACHMENTS_BUCKET, ensure_object_store
from services.runtime.service import Service
from services.runtime.settings import Settings


async def start_delivery(service: Service) -> None:
    await ensure_object_store(service.broker.config.connection_state.stream, ATTACHMENTS_BUCKET,
                              description="Message attachments", replicas=service.settings.resolved_nats_replicas)
    sender = service.resources["sender"] = Sender(service)
    service.resources["direct_email"] = mail.DirectRounds(service)  # `send_email`'s rounds
    service.after_events(sender.wake.set)  # an answer to send: now, not at the next poll
    service.resources["smtp"] = await inbound.serve_smtp(service)


async def run_sender(service: Service) -> None:
    await service.resources["sender"].run()


async def stop_delivery(service: Service) -> None:
    server: asyncio.AbstractServer | None = service.resources.pop("smtp", None)
    if server is not None:
        server.close()
        await server.wait_closed()
    sender: Sender | None = service.resources.pop("sender", None)
    if sender is not None:
        await sender.close()


def build(settings: Settings | None = None, **overrides: object) -> Service:
    settings = settings or Settings()
    service = Service(
        "notifications", settings, produces=(EmailReceived, NotificationSent, NotificationFailed, EmailBounced),
        subscriptions=(
            Subscription("auth", {UserRegistered: consumers.record_customer}),
            Subscription("conversations", {
                ConversationCreated: consumers.record_conversation,
                ReporterChanged: consumers.record_reporter,
                MessagePosted: partial(consumers.message_posted, settings.reply_domain),
                MessageRedacted: consumers.message_redacted,
            }),
        ),
        read_models=(Customer, Conversation, Participant),
        **overrides,  # type: ignore[arg-type]
    )
    service.on_start(start_delivery)
    service.background(run_sender)
    service.on_stop(stop_delivery)
    endpoints = {
        operations.notifications.send_email: mail.send_email,
        operations.notifications.list_dev_mail: mail.list_dev_mail,
        operations.notifications.list_notifications: admin.list_notifications,
        operations.notifications.retry_notification: admin.retry,
        operations.notifications.set_channel_webhook: partial(admin.set_webhook, settings.env),
    }
    service.answer_all(endpoints)
    return service
