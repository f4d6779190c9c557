"""What callers see of conversations: the customer's view never holds an internal note."""

from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, select

from contracts.conversations import (
    AgentConversation,
    AgentConversationReply,
    AttachmentView,
    AttributeValue,
    ConversationDetail,
    ConversationSummary,
    MessageView,
)
from contracts.events import AttachmentRef
from services.conversations.models import Attachment, Conversation, Customer, Message
from services.conversations import domain
from services.conversations.store import Entry, PortalRules, now


def summary(conversation: Conversation, read_at: Any) -> ConversationSummary:
    unread = conversation.last_agent_reply_at is not None and (read_at is None
                                                               or conversation.last_agent_reply_at > read_at)
    return ConversationSummary(
        id=conversation.id, portal=conversation.portal, subject=conversation.subject,
        status=conversation.status, channel=conversation.channel,  # type: ignore[arg-type]
        created_at=conversation.created_at, last_activity_at=conversation.last_activity_at,
        preview=conversation.preview, unread=unread, version=conversation.version)


def messages(session: Session, conversation_id: str, *, include_internal: bool) -> list[MessageView]:
    statement = select(Message).where(Message.conversation_id == conversation_id).order_by(col(Message.seq))
    if not include_internal:
        statement = statement.where(Message.visibility == "public")
    return _views(session, list(session.exec(statement).all()),
                  Attachment.conversation_id == conversation_id)  # type: ignore[arg-type]


def posted(row: Entry, refs: list[AttachmentRef], author_name: str | None) -> MessageView:
    """The view of a message just written (the answer to posting it), from what the caller holds."""
    return MessageView(
        id=row.id, kind=row.kind, author_id=row.author_id, author_kind=row.author_kind,
        author_name=author_name, channel=row.channel, body=row.body, event=row.event,  # type: ignore[arg-type]
        detail=row.detail, created_at=row.created_at,
        attachments=[AttachmentView(id=r.attachment_id, filename=r.filename, content_type=r.content_type,
                                    size=r.size, sha256=r.sha256) for r in refs])


def _views(session: Session, rows: list[Message], files_of: Any) -> list[MessageView]:
    files: dict[str, list[AttachmentView]] = defaultdict(list)
    for attachment in session.exec(select(Attachment).where(files_of, col(Attachment.deleted_at).is_(None))
                                   .order_by(col(Attachment.id))).all():
        files[attachment.message_id].append(AttachmentView(
            id=attachment.id, filename=attachment.filename, content_type=attachment.content_type,
            size=attachment.size, sha256=attachment.sha256))
    author_ids = {m.author_id for m in rows if m.author_id}
    names = {c.id: c.display_name or c.email for c in session.exec(
        select(Customer).where(col(Customer.id).in_(author_ids))).all()} if author_ids else {}
    return [MessageView(
        id=m.id, kind=m.kind, author_id=m.author_id, author_kind=m.author_kind,
        author_name=names.get(m.author_id or "") or (m.detail or {}).get("author_name"), channel=m.channel,
        body=m.body,  # type: ignore[arg-type]
        redacted=m.redacted_at is not None, event=m.event, detail=m.detail,
        attachments=files.get(m.id, []), created_at=m.created_at) for m in rows]


def _attribute(conversation: Conversation, name: str, names: dict[str, str]) -> object | None:
    if name == "assignee":
        return names.get(conversation.assignee_id or "") if conversation.assignee_id else None
    if name == "reference":
        return conversation.id
    if name.startswith("custom."):
        return conversation.attributes.get(name.removeprefix("custom."))
    value = getattr(conversation, name, None)
    return value.isoformat() if hasattr(value, "isoformat") else value


def detail(session: Session, conversation: Conversation, config: PortalRules, read_at: Any,
           timeline: list[MessageView] | None = None) -> ConversationDetail:
    """The customer's view of a conversation; `timeline`: its public messages when the caller holds
    them all (a conversation just started), else they are read."""
    names: dict[str, str] = {}
    if conversation.assignee_id:
        agent = session.get(Customer, conversation.assignee_id)
        if agent is not None:
            names[agent.id] = agent.display_name or agent.email
    attributes = [AttributeValue(attribute=a["attribute"], display_name=a["display_name"],
                                 value=_attribute(conversation, a["attribute"], names))
                  for a in config.detail_attributes]
    reopen = None if conversation.status == "open" else domain.reopen_option(
        enabled=config.reopen_enabled, policy=config.reopen_policy, within_days=config.reopen_within_days,
        closed_at=conversation.closed_at, now=now())
    return ConversationDetail(
        **summary(conversation, read_at).model_dump(), closed_at=conversation.closed_at,
        linked_from=conversation.linked_from, attributes=attributes, reopen=reopen,
        messages=messages(session, conversation.id, include_internal=False) if timeline is None else timeline)


def agent_view(conversation: Conversation, email: str | None = None) -> AgentConversation:
    return AgentConversation(
        id=conversation.id, portal=conversation.portal, subject=conversation.subject,
        status=conversation.status, channel=conversation.channel,  # type: ignore[arg-type]
        reply_channel=conversation.reply_channel, customer_id=conversation.customer_id,  # type: ignore[arg-type]
        customer_email=email, assignee_id=conversation.assignee_id, created_at=conversation.created_at,
        updated_at=conversation.updated_at, closed_at=conversation.closed_at, linked_from=conversation.linked_from,
        attributes=conversation.attributes, preview=conversation.preview)


def agent_reply(session: Session, conversation: Conversation) -> AgentConversationReply:
    """What an agent's action on a conversation answers: the conversation with its customer's e-mail."""
    customer = session.get(Customer, conversation.customer_id)
    return AgentConversationReply(conversation=agent_view(conversation, customer.email if customer else None))
