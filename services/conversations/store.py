"""Changing conversations: every change and the event it publishes happen in the caller's transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from contracts import roles
from contracts.conversations import Viewer
from contracts.rpc import Actor
from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.events import (
    AttachmentRef,
    ConversationClosed,
    ConversationCreated,
    ConversationReopened,
    MessagePosted,
)
from services.conversations import domain
from services.conversations.models import Attachment, Conversation, ConversationViewer, Customer, Message, PortalConfig
from services.runtime.outbox import record_event
from services.runtime.readmodel import upsert_newer
from services.runtime.settings import Settings
from services.runtime.clock import now


@dataclass(frozen=True)
class Author:
    id: str | None
    kind: str  # customer | agent | system
    name: str | None = None  # for an author with no account (an API key): shown as the author


@dataclass(frozen=True)
class PortalRules:
    """A portal's conversation settings as the rules read them (a plain value: cheap to make)."""

    portal: str
    org_id: str
    my_conversations_enabled: bool = True
    reopen_enabled: bool = True
    reopen_policy: str = "always"
    reopen_within_days: int = 7
    detail_attributes: tuple[dict[str, str], ...] = ()
    max_body_chars: int | None = None
    max_files: int | None = None
    max_file_bytes: int | None = None


_RULES = tuple(f for f in PortalRules.__dataclass_fields__ if f not in ("portal", "org_id", "detail_attributes"))


def portal_config(session: Session, portal: str, org_id: str) -> PortalRules:
    """The portal's settings, or the defaults when the admin never changed them."""
    config = session.get(PortalConfig, portal)
    if config is None:
        return PortalRules(portal=portal, org_id=org_id)
    if config.org_id != org_id:  # portal slugs are unique across orgs; a mismatch is another org's portal
        raise ServiceError(ErrorCode.unknown_portal, f"There is no portal '{portal}'.")
    return PortalRules(portal=portal, org_id=org_id, detail_attributes=tuple(config.detail_attributes),
                       **{name: getattr(config, name) for name in _RULES})


def limits_of(config: PortalRules | PortalConfig, settings: Settings) -> domain.Limits:
    """The portal's limits where its admin set them, else the process-wide defaults (`PORTICO_MAX_*`)."""
    return domain.Limits(max_body_chars=config.max_body_chars or settings.max_message_chars,
                  max_files=config.max_files if config.max_files is not None else settings.max_attachments,
                  max_file_bytes=config.max_file_bytes or settings.max_attachment_bytes)


def remember_customer(session: Session, *, user_id: str, org_id: str, email: str | None, display_name: str | None,
                      kind: str) -> None:
    """A customer may act before auth's `UserRegistered` reaches us (delayed creation); keep what we
    know as version 0, which the event then overwrites."""
    upsert_newer(session, Customer, {
        "id": user_id, "org_id": org_id, "email": email or "", "display_name": display_name, "kind": kind,
        "registered_at": now(), "version": 0})


def create_conversation(session: Session, *, org_id: str, portal: str, customer_id: str, channel: str,
                        subject: str, viewers: list[tuple[str, str]], linked_from: str | None = None,
                        thread_key: str | None = None) -> Conversation:
    at = now()
    conversation = Conversation(
        id=new_id(), org_id=org_id, portal=portal, customer_id=customer_id, channel=channel, reply_channel=channel,
        status="open", subject=domain.check_subject(subject), created_at=at, updated_at=at, last_activity_at=at,
        linked_from=linked_from, thread_key=thread_key)
    session.add(conversation)
    for viewer, role in viewers:
        session.add(ConversationViewer(viewer=viewer, conversation_id=conversation.id, portal=portal, role=role,
                           status="open", channel=channel, last_activity_at=at, read_at=at))
    session.flush()  # the viewer rows exist before anything updates them
    record_event(session, ConversationCreated(
        conversation_id=conversation.id, portal=portal, customer_id=customer_id, channel=channel,  # type: ignore[arg-type]
        conversation_subject=conversation.subject, linked_from=linked_from),
        org_id=org_id, aggregate_id=conversation.id, aggregate_version=conversation.version)
    return conversation


def _bump(conversation: Conversation, *, public: bool) -> datetime:
    at = now()
    conversation.updated_at = at
    if public:
        conversation.last_activity_at = at
    conversation.version += 1
    return at


def _sync_viewers(session: Session, conversation: Conversation) -> None:
    session.connection().execute(
        update(ConversationViewer)
        .where(ConversationViewer.conversation_id == conversation.id)  # type: ignore[arg-type]
        .values(status=conversation.status, last_activity_at=conversation.last_activity_at))


def _entry(session: Session, conversation: Conversation, *, kind: str, author: Author, visibility: str,
           channel: str, body: str | None = None, event: str | None = None,
           detail: dict[str, Any] | None = None) -> Message:
    message = Message(id=new_id(), conversation_id=conversation.id, seq=conversation.next_seq, kind=kind,
                      author_id=author.id, author_kind=author.kind, visibility=visibility, channel=channel,
                      body=body, event=event, detail=detail or {}, created_at=now())
    conversation.next_seq += 1
    session.add(message)
    return message


def add_message(session: Session, conversation: Conversation, *, author: Author, body: str, channel: str,
                internal: bool = False, attachments: list[AttachmentRef] = (),  # type: ignore[assignment]
                in_reply_to: str | None = None) -> Message:
    """A message or internal note, its files, and `MessagePosted`."""
    public = not internal
    at = _bump(conversation, public=public)
    message = _entry(session, conversation, kind="note" if internal else "message", author=author,
                     visibility="internal" if internal else "public", channel=channel, body=body,
                     detail={"author_name": author.name} if author.name else None)
    message.created_at = at
    for ref in attachments:
        session.add(Attachment(id=ref.attachment_id, org_id=conversation.org_id, conversation_id=conversation.id,
                               message_id=message.id, filename=ref.filename, content_type=ref.content_type,
                               size=ref.size, sha256=ref.sha256, created_at=at))
    if public:
        conversation.preview = domain.preview(body)
        if author.kind == "agent":
            conversation.last_agent_reply_at = at
    # A note's text never leaves this service: the event says a note was added, not what it says.
    envelope = record_event(session, MessagePosted(
        conversation_id=conversation.id, message_id=message.id, portal=conversation.portal,
        customer_id=conversation.customer_id, author_id=author.id, author_kind=author.kind,  # type: ignore[arg-type]
        visibility=message.visibility, channel=channel, body=body if public else "",  # type: ignore[arg-type]
        attachments=list(attachments) if public else [], in_reply_to=in_reply_to,
        conversation_subject=conversation.subject), org_id=conversation.org_id, aggregate_id=conversation.id,
        aggregate_version=conversation.version)
    message.event_id = envelope.id
    session.add(conversation)
    _sync_viewers(session, conversation)
    return message


def add_event(session: Session, conversation: Conversation, *, author: Author, event: str,
              detail: dict[str, Any] | None = None, internal: bool = False) -> Message:
    """A timeline entry: closed, reopened, subject_changed, assigned, reporter_changed."""
    _bump(conversation, public=not internal)
    message = _entry(session, conversation, kind="event", author=author,
                     visibility="internal" if internal else "public", channel=conversation.reply_channel,
                     event=event, detail=detail)
    session.add(conversation)
    _sync_viewers(session, conversation)
    return message


def close(session: Session, conversation: Conversation, *, author: Author) -> None:
    if conversation.status == "closed":
        return
    conversation.status = "closed"
    conversation.closed_at = now()
    add_event(session, conversation, author=author, event="closed")
    record_event(session, ConversationClosed(
        conversation_id=conversation.id, portal=conversation.portal, customer_id=conversation.customer_id,
        closed_by=author.id), org_id=conversation.org_id, aggregate_id=conversation.id,
        aggregate_version=conversation.version)


def reopen(session: Session, conversation: Conversation, *, author: Author) -> None:
    """Open again; from now on answers go through the `portal` channel."""
    if conversation.status == "open":
        return
    previous = conversation.reply_channel
    conversation.status = "open"
    conversation.closed_at = None
    conversation.reply_channel = "portal"
    add_event(session, conversation, author=author, event="reopened")
    record_event(session, ConversationReopened(
        conversation_id=conversation.id, portal=conversation.portal, customer_id=conversation.customer_id,
        reopened_by=author.id, reopened_by_kind=author.kind, previous_channel=previous),  # type: ignore[arg-type]
        org_id=conversation.org_id, aggregate_id=conversation.id, aggregate_version=conversation.version)


def write_to_closed(session: Session, conversation: Conversation, config: PortalRules, *, author: Author,
                    channel: str, viewers: list[tuple[str, str]]) -> Conversation:
    """Where a customer's message to a closed conversation goes, on any channel: the conversation
    reopened where the portal's policy allows it (`domain.message_to_closed`), else a new one on
    `channel` linked to it (`linked_from`, and a `continues` entry), seen by `viewers` and the
    closed one's reporter."""
    outcome = domain.message_to_closed(enabled=config.reopen_enabled, policy=config.reopen_policy,
                                       within_days=config.reopen_within_days, closed_at=conversation.closed_at,
                                       now=now())
    return _apply_reopen(session, conversation, outcome, author=author, channel=channel, viewers=viewers)


def _apply_reopen(session: Session, conversation: Conversation, outcome: str, *, author: Author, channel: str,
                  viewers: list[tuple[str, str]]) -> Conversation:
    if outcome == "reopen":
        reopen(session, conversation, author=author)
        return conversation
    if all(viewer != conversation.customer_id for viewer, _ in viewers):
        viewers = viewers + [(conversation.customer_id, "reporter")]
    successor = create_conversation(
        session, org_id=conversation.org_id, portal=conversation.portal, customer_id=conversation.customer_id,
        channel=channel, subject=conversation.subject, viewers=viewers, linked_from=conversation.id,
        thread_key=conversation.thread_key if channel == conversation.channel else None)
    add_event(session, successor, author=author, event="continues", detail={"conversation_id": conversation.id})
    return successor


def reopen_on_request(session: Session, conversation: Conversation, config: PortalRules, *, author: Author,
                      viewers: list[tuple[str, str]]) -> Conversation:
    """A customer asked the portal to reopen (`domain.customer_reopen`): reopened, or a new linked
    conversation under the `new_conversation` policy; raises `reopen_disabled` or
    `reopen_window_passed` where the policy refuses."""
    outcome = domain.customer_reopen(enabled=config.reopen_enabled, policy=config.reopen_policy,
                                     within_days=config.reopen_within_days, closed_at=conversation.closed_at,
                                     now=now())
    return _apply_reopen(session, conversation, outcome, author=author, channel="portal", viewers=viewers)


def viewers_of(viewer: Viewer) -> list[tuple[str, str]]:
    """Who sees a conversation a customer starts: its reporter, and the creating browser when that
    browser sees only its own."""
    rows = [(viewer.user_id, "reporter")]
    if viewer.sees_only_own_browser:
        rows.append((domain.viewer_key(viewer), "creator"))
    return rows


def visible(session: Session, viewer: Viewer, conversation_id: str, *, for_update: bool = False) -> Conversation:
    """The conversation if this viewer may see it; `not_found` otherwise, exactly as for a missing one."""
    row = ConversationViewer
    statement = (select(Conversation).join(row, row.conversation_id == Conversation.id)  # type: ignore[arg-type]
                 .where(row.viewer == domain.viewer_key(viewer), col(row.role).in_(domain.SEES_CONVERSATION),
                        Conversation.id == conversation_id,
                        Conversation.portal == viewer.portal, Conversation.org_id == viewer.org_id))
    conversation = session.exec(statement).first()
    if conversation is None:
        raise ServiceError(ErrorCode.not_found, "No such conversation.")
    return conversation


def of_org(session: Session, org_id: str, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.org_id != org_id:
        raise ServiceError(ErrorCode.not_found, "No such conversation.")
    return conversation


def portal_open(session: Session, viewer: Viewer) -> PortalRules:
    """The portal's rules for a customer's request; `my_conversations_disabled` where My
    Conversations is turned off."""
    config = portal_config(session, viewer.portal, viewer.org_id)
    if not config.my_conversations_enabled:
        raise ServiceError(ErrorCode.my_conversations_disabled,
                           f"My Conversations is turned off on portal '{viewer.portal}'.")
    return config


def agent_author(actor: Actor) -> Author:
    """The author an agent or API key writes as; `forbidden` for a role that may not work
    conversations (`contracts.roles`)."""
    if not roles.can_work_conversations(actor.role):
        raise ServiceError(ErrorCode.forbidden, "Only agents and admins work conversations.")
    kind, _, ident = actor.principal.partition(":")
    if kind == "user":
        return Author(ident, "agent")
    return Author(actor.principal, "agent", actor.name or domain.SUPPORT_NAME)
