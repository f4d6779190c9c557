"""Redacting a message erases its text and files from everywhere Portico keeps them, not just the view:
the message row, its files in the Object Store, the outbox row, the event in the stream, and any
stored Idempotency-Key answer. SQLite overwrites freed space (`secure_delete`) and the WAL is
checkpointed, so the text is not left in the database files either.
"""

import asyncio
import json
from datetime import datetime, timedelta

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from contracts.conversations import AgentConversationReply, AgentRedact
from contracts.errors import ErrorCode, ServiceError
from contracts.events import MessagePosted, MessageRedacted
from contracts.subjects import STREAMS
from services.conversations import domain, idempotency, store, views
from services.conversations.models import Attachment, Message
from services.runtime.logging import get_logger
from services.runtime.objects import delete_attachments
from services.runtime.outbox import OutboxRecord, record_event
from services.runtime.service import Service

log = get_logger("portico.conversations")

SEARCH_LIMIT = 20_000  # stream messages looked through for the event to erase


def _scrub(session: Session, request: AgentRedact) -> tuple[AgentConversationReply, list[str], str | None, datetime]:
    me = store.agent_author(request.actor)
    conversation = store.of_org(session, request.actor.org_id, request.conversation_id, for_update=True)
    message = session.get(Message, request.message_id)
    if message is None or message.conversation_id != conversation.id or message.kind == "event":
        raise ServiceError(ErrorCode.not_found, "No such message in this conversation.")
    files = session.exec(select(Attachment).where(Attachment.message_id == message.id,
                                                  col(Attachment.deleted_at).is_(None))).all()
    if message.redacted_at is None:
        at = store.now()
        message.body, message.redacted_at, message.redacted_by = None, at, me.id
        session.add(message)
        for attachment in files:
            attachment.deleted_at, attachment.filename, attachment.sha256 = at, "redacted", ""
            session.add(attachment)
        _erase_outbox_copy(session, message.event_id)
        idempotency.redact_answers(session, conversation.id, message.id)
        latest = session.exec(select(Message).where(
            Message.conversation_id == conversation.id, Message.kind == "message",
            col(Message.body).is_not(None)).order_by(col(Message.seq).desc())).first()
        conversation.preview = domain.preview(latest.body) if latest and latest.body else ""
        conversation.version += 1
        conversation.updated_at = at
        session.add(conversation)
        record_event(session, MessageRedacted(conversation_id=conversation.id, message_id=message.id,
                                              redacted_by=me.id, customer_id=conversation.customer_id),
                     org_id=conversation.org_id, aggregate_id=conversation.id, aggregate_version=conversation.version)
        log.info("message redacted", conversation_id=conversation.id, message_id=message.id, by=me.id)
    return views.agent_reply(session, conversation), [f.id for f in files], message.event_id, message.created_at


def _erase_outbox_copy(session: Session, event_id: str | None) -> None:
    if event_id is None:
        return
    row = session.exec(select(OutboxRecord).where(OutboxRecord.event_id == event_id)).first()
    if row is None:
        return
    envelope = json.loads(row.payload)
    envelope["data"].update(body="", attachments=[])
    session.connection().execute(update(OutboxRecord).where(OutboxRecord.event_id == event_id)  # type: ignore[arg-type]
                                 .values(payload=json.dumps(envelope)))


async def redact(service: Service, request: AgentRedact) -> AgentConversationReply:
    reply, attachment_ids, event_id, posted_at = await service.transaction(_scrub, request)
    await delete_attachments(service.broker.config.connection_state.stream, attachment_ids)
    if event_id:
        await _erase_stream_copy(service, event_id, posted_at)
    await asyncio.to_thread(_checkpoint, service.engine)
    return reply


def _checkpoint(engine: Engine) -> None:
    """Move the WAL into the database and truncate it: the WAL still holds the page with the text."""
    if engine.dialect.name != "sqlite":
        return
    connection = engine.raw_connection()
    try:
        connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        connection.close()


def _published(session: Session, event_id: str) -> bool:
    row = session.exec(select(OutboxRecord).where(OutboxRecord.event_id == event_id)).first()
    return row is None or row.published_at is not None


async def _erase_stream_copy(service: Service, event_id: str, posted_at: datetime) -> None:
    """Delete (and overwrite) the MessagePosted in the stream once the relay has published it.

    If the relay read the row before it was scrubbed, the stream holds the text: wait until the
    row is marked published, then look for it from the time it was posted and erase it.
    """
    for _ in range(100):
        if await service.read(_published, event_id):
            break
        await asyncio.sleep(0.05)
    else:
        log.warning("redacted event not yet published; it will be published without its text", event_id=event_id)
        return
    js = service.broker.config.connection_state.stream
    stream = STREAMS["conversations"]
    subscription = await js.pull_subscribe(
        MessagePosted.subject(), stream=stream, config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.BY_START_TIME, inactive_threshold=30.0,
            opt_start_time=posted_at - timedelta(seconds=5)))
    try:
        seen = 0
        while seen < SEARCH_LIMIT:
            try:
                batch = await subscription.fetch(200, timeout=1)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            for message in batch:
                seen += 1
                if (message.headers or {}).get("Nats-Msg-Id") == event_id:
                    await js.delete_msg(stream, message.metadata.sequence.stream)
                    log.info("redacted event erased from the stream", event_id=event_id)
                    return
        log.warning("redacted event not found in the stream", event_id=event_id, searched=seen)
    finally:
        await subscription.unsubscribe()
