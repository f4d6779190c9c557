"""Messages from other channels (messenger, sms, whatsapp, ...): a provider's adapter posts them,
signed with the org's channel secret (`contracts.signing`), and each lands once in the right
conversation for the right customer."""

import time
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlmodel import Session, col, select

from contracts import operations
from contracts import signing
from contracts.conversations import InboundAccepted, InboundMessage, InboundPayload
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import CustomerAccount, EnsureCustomer
from services.conversations import domain, store
from services.conversations.models import ChannelSecret, Conversation, InboundReceipt
from services.runtime.logging import get_logger
from services.runtime.rpc import validation_message
from services.runtime.service import Service

log = get_logger("portico.conversations")

def _secrets(session: Session, org_id: str) -> list[str]:
    row = session.get(ChannelSecret, org_id)
    if row is None:
        return []
    live = [row.secret]
    if row.previous_secret and row.previous_until and row.previous_until > datetime.now(UTC):
        live.append(row.previous_secret)
    return live


def _verify(request: InboundMessage, live_secrets: list[str]) -> None:
    refused = ServiceError(ErrorCode.invalid_signature,
                           "Bad or missing signature: sign `<timestamp>.<body>` with the org's channel secret "
                           "(HMAC-SHA256) and send it as `X-Portico-Signature: sha256=<hex>`.")
    try:
        skew = abs(time.time() - int(request.timestamp))
    except ValueError:
        raise refused from None
    if skew > signing.MAX_SKEW_SECONDS:
        raise ServiceError(ErrorCode.invalid_signature,
                           "X-Portico-Timestamp is more than 5 minutes from the server's clock.")
    if not signing.signed_by_any(live_secrets, request.timestamp, request.raw_body.encode(), request.signature):
        raise refused


def _receipt(session: Session, org_id: str, channel: str, external_id: str) -> InboundReceipt | None:
    return session.get(InboundReceipt, (org_id, channel, external_id))


def _accept(session: Session, request: InboundMessage, payload: InboundPayload, body: str,
            customer: CustomerAccount) -> InboundAccepted:
    earlier = _receipt(session, request.org_id, request.channel, payload.external_message_id)
    if earlier is not None:  # a concurrent retry got here first
        return InboundAccepted(conversation_id=earlier.conversation_id, message_id=earlier.message_id,
                               created_conversation=False, duplicate=True)
    thread_key = payload.thread_id or None
    conversation = None
    if thread_key:
        conversation = session.exec(select(Conversation).where(
            Conversation.org_id == request.org_id, Conversation.channel == request.channel,
            Conversation.thread_key == thread_key, Conversation.customer_id == customer.user_id)
            .order_by(col(Conversation.created_at).desc())).first()
    author = store.Author(customer.user_id, "customer")
    created = conversation is None
    if conversation is None:
        conversation = store.create_conversation(
            session, org_id=request.org_id, portal=payload.portal, customer_id=customer.user_id,
            channel=request.channel, subject=payload.subject or domain.preview(body)[:80],
            viewers=[(customer.user_id, "reporter")], thread_key=thread_key)
    elif conversation.status == "closed":
        config = store.portal_config(session, conversation.portal, conversation.org_id)
        earlier = conversation
        conversation = store.write_to_closed(session, conversation, config, author=author, channel=request.channel,
                                             viewers=[(customer.user_id, "reporter")])
        created = conversation is not earlier
        conversation.reply_channel = request.channel  # the customer is on this channel: answers go back on it
    message = store.add_message(session, conversation, author=author, body=body, channel=request.channel)
    session.add(InboundReceipt(org_id=request.org_id, channel=request.channel,
                               external_message_id=payload.external_message_id, conversation_id=conversation.id,
                               message_id=message.id, created_at=store.now()))
    log.info("inbound message accepted", channel=request.channel, conversation_id=conversation.id,
             message_id=message.id, created_conversation=created)
    return InboundAccepted(conversation_id=conversation.id, message_id=message.id, created_conversation=created,
                           duplicate=False)


async def receive(service: Service, request: InboundMessage) -> InboundAccepted:
    _verify(request, await service.read(_secrets, request.org_id))
    try:
        payload = InboundPayload.model_validate_json(request.raw_body)
    except ValidationError as exc:
        raise ServiceError(ErrorCode.invalid_request, validation_message(exc)) from exc
    earlier = await service.read(_receipt, request.org_id, request.channel, payload.external_message_id)
    if earlier is not None:
        return InboundAccepted(conversation_id=earlier.conversation_id, message_id=earlier.message_id,
                               created_conversation=False, duplicate=True)
    config = await service.read(store.portal_config, payload.portal, request.org_id)
    body = domain.check_message(payload.body, [], store.limits_of(config, service.settings))
    customer = await service.client.call(operations.auth.ensure_customer, EnsureCustomer(
        org_id=request.org_id, portal=payload.portal, email=payload.customer.email,
        display_name=payload.customer.display_name))

    def accept(session: Session) -> InboundAccepted:
        store.remember_customer(session, user_id=customer.user_id, org_id=request.org_id, email=customer.email,
                                display_name=customer.display_name, kind="customer")
        return _accept(session, request, payload, body, customer)

    return await service.transaction(accept)
