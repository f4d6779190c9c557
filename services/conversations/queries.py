"""The read side of conversations: My Conversations, a customer's conversation, the agent inbox
and timeline, and the limits and switches the gateway shows. The write side is `customer.py`
(the customer's portal actions), `agent.py` (the agents'), `inbound.py` and `consumers.py`."""

from sqlalchemy import exists, func, literal, or_, tuple_
from sqlmodel import Session, col, select

from contracts.conversations import (
    AgentConversationDetail,
    AgentGetConversation,
    AgentInbox,
    AgentInboxPage,
    Assignee,
    AssigneeList,
    ConversationPage,
    ConversationReply,
    DetailAttribute,
    GetConversation,
    GetMessageLimits,
    GetPortalFeatures,
    ListAssignees,
    ListConversations,
    MessageLimits,
    PortalFeatures,
    Viewer,
)
from contracts.errors import ErrorCode, ServiceError
from contracts.states import ViewerRole
from services.conversations import domain, store, views
from services.conversations.models import Conversation, ConversationViewer, Customer, Message, StaffRead
from services.runtime.db import UtcDateTime
from services.runtime.files import ALLOWED_TYPES
from services.runtime.settings import Settings


def _read_at(session: Session, viewer: Viewer, conversation_id: str) -> ConversationViewer | None:
    return session.get(ConversationViewer, (domain.viewer_key(viewer), conversation_id))


def message_limits(settings: Settings, session: Session, request: GetMessageLimits) -> MessageLimits:
    portal = request.portal
    if request.conversation_id:
        portal = store.of_org(session, request.org_id, request.conversation_id).portal
    if not portal:
        raise ServiceError(ErrorCode.invalid_request, "Name a portal or a conversation.")
    limits = store.limits_of(store.portal_config(session, portal, request.org_id), settings)
    return MessageLimits(max_body_chars=limits.max_body_chars, max_files=limits.max_files,
                         max_file_bytes=limits.max_file_bytes)


def portal_features(settings: Settings, session: Session, request: GetPortalFeatures) -> PortalFeatures:
    config = store.portal_config(session, request.portal, request.org_id)
    limits = store.limits_of(config, settings)
    return PortalFeatures(my_conversations_enabled=config.my_conversations_enabled,
                          reopen_enabled=config.reopen_enabled, reopen_policy=config.reopen_policy,
                          reopen_within_days=config.reopen_within_days, max_body_chars=limits.max_body_chars,
                          max_files=limits.max_files, max_file_bytes=limits.max_file_bytes,
                          file_types=dict(ALLOWED_TYPES))


def list_conversations(session: Session, request: ListConversations) -> ConversationPage:
    viewer = request.viewer
    store.portal_open(session, viewer)
    row = ConversationViewer
    statement = (select(Conversation, row.read_at, row.last_activity_at)
                 .join(row, row.conversation_id == Conversation.id)  # type: ignore[arg-type]
                 .where(row.viewer == domain.viewer_key(viewer), row.portal == viewer.portal,
                        col(row.role).in_(domain.SEES_CONVERSATION)))
    if request.status:
        statement = statement.where(row.status == request.status)
    if request.channel:
        statement = statement.where(row.channel == request.channel)
    if request.cursor:
        at, last_id = domain.decode_cursor(request.cursor)
        statement = statement.where(tuple_(row.last_activity_at, row.conversation_id)
                                    < tuple_(literal(at, UtcDateTime), literal(last_id)))
    if request.q and request.q.strip():
        pattern = domain.like_pattern(request.q.strip())
        statement = statement.where(or_(
            col(Conversation.subject).ilike(pattern, escape="\\"),
            exists().where(Message.conversation_id == Conversation.id, Message.visibility == "public",
                           col(Message.body).ilike(pattern, escape="\\"))))
    statement = statement.order_by(col(row.last_activity_at).desc(), col(row.conversation_id).desc())
    rows = session.exec(statement.limit(request.limit + 1)).all()
    page = rows[:request.limit]
    next_cursor = domain.encode_cursor(page[-1][2], page[-1][0].id) if len(rows) > request.limit else None
    return ConversationPage(conversations=[views.summary(c, read_at) for c, read_at, _ in page],
                            next_cursor=next_cursor)


def get_conversation(session: Session, request: GetConversation) -> ConversationReply:
    config = store.portal_open(session, request.viewer)
    conversation = store.visible(session, request.viewer, request.conversation_id)
    row = _read_at(session, request.viewer, conversation.id)
    detail = views.detail(session, conversation, config, row.read_at if row else None)
    if row is not None:  # opening it marks the agent's answers read
        row.read_at = store.now()
        session.add(row)
    return ConversationReply(conversation=detail)


def inbox(session: Session, request: AgentInbox) -> AgentInboxPage:
    """The org's conversations, last changed first, filtered; each with whether the customer wrote since
    the caller last opened it (`unread`) and since the last answer (`awaiting_answer`)."""
    me = store.agent_author(request.actor)
    statement = select(Conversation).where(Conversation.org_id == request.actor.org_id)
    if request.status:
        statement = statement.where(Conversation.status == request.status)
    if request.channel:
        statement = statement.where(Conversation.channel == request.channel)
    if request.portal:
        statement = statement.where(Conversation.portal == request.portal)
    if request.customer_id:
        statement = statement.where(Conversation.customer_id == request.customer_id)
    if request.assignee == "none":
        statement = statement.where(col(Conversation.assignee_id).is_(None))
    elif request.assignee:
        statement = statement.where(Conversation.assignee_id == (me.id if request.assignee == "me" else request.assignee))
    if request.q and request.q.strip():
        # Staff search everything they can read: the subject, the customer's address, messages and notes.
        pattern = domain.like_pattern(request.q.strip())
        statement = statement.where(or_(
            col(Conversation.subject).ilike(pattern, escape="\\"),
            exists().where(Customer.id == Conversation.customer_id, col(Customer.email).ilike(pattern, escape="\\")),
            exists().where(Message.conversation_id == Conversation.id, col(Message.body).ilike(pattern, escape="\\"))))
    if request.cursor:
        at, last_id = domain.decode_cursor(request.cursor)
        statement = statement.where(tuple_(Conversation.updated_at, Conversation.id)
                                    < tuple_(literal(at, UtcDateTime), literal(last_id)))
    statement = statement.order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
    rows = session.exec(statement.limit(request.limit + 1)).all()
    page = rows[:request.limit]
    ids = [c.id for c in page]
    emails = {c.id: c.email for c in session.exec(select(Customer).where(
        col(Customer.id).in_({c.customer_id for c in page}))).all()} if page else {}
    wrote = dict(session.exec(select(Message.conversation_id, func.max(Message.created_at)).where(
        col(Message.conversation_id).in_(ids), Message.kind == "message", Message.author_kind == "customer")
        .group_by(col(Message.conversation_id))).all()) if page else {}
    read = dict(session.exec(select(StaffRead.conversation_id, StaffRead.read_at).where(
        StaffRead.reader == request.actor.principal, col(StaffRead.conversation_id).in_(ids))).all()) if page else {}
    views_ = []
    for c in page:
        last_customer = wrote.get(c.id)
        view = views.agent_view(c, emails.get(c.customer_id))
        view.unread = domain.staff_unread(last_customer, read.get(c.id))
        view.awaiting_answer = domain.staff_unread(last_customer, c.last_agent_reply_at)
        views_.append(view)
    return AgentInboxPage(
        conversations=views_,
        next_cursor=domain.encode_cursor(page[-1].updated_at, page[-1].id) if len(rows) > request.limit else None)


def agent_conversation(session: Session, request: AgentGetConversation) -> AgentConversationDetail:
    store.agent_author(request.actor)
    conversation = store.of_org(session, request.actor.org_id, request.conversation_id)
    participants = [{"user_id": v.viewer, "role": v.role} for v in session.exec(
        select(ConversationViewer).where(ConversationViewer.conversation_id == conversation.id,
                                         col(ConversationViewer.role) != ViewerRole.creator)
        .order_by(col(ConversationViewer.role).desc())).all()]
    mark_read(session, request.actor.principal, conversation.id)
    config = store.portal_config(session, conversation.portal, conversation.org_id)
    return AgentConversationDetail(conversation=views.agent_reply(session, conversation).conversation,
                                   participants=participants,
                                   detail_attributes=[DetailAttribute(**a) for a in config.detail_attributes],
                                   messages=views.messages(session, conversation.id, include_internal=True))


def mark_read(session: Session, reader: str, conversation_id: str) -> None:
    """The caller opened the conversation: what the customer wrote until now is no longer `unread`."""
    row = session.get(StaffRead, (reader, conversation_id))
    if row is None:
        row = StaffRead(reader=reader, conversation_id=conversation_id, read_at=store.now())
    row.read_at = store.now()
    session.add(row)


def assignees(session: Session, request: ListAssignees) -> AssigneeList:
    """The org's staff accounts (as `agent_assign` accepts them), by e-mail."""
    store.agent_author(request.actor)
    staff = session.exec(select(Customer).where(Customer.org_id == request.actor.org_id, Customer.kind == "staff")
                         .order_by(col(Customer.email))).all()
    return AssigneeList(staff=[Assignee(id=s.id, email=s.email, display_name=s.display_name) for s in staff])
