"""The customer's side, through the portal: My Conversations, new conversations, messages, reopen."""

from sqlalchemy import exists, literal, or_, tuple_
from sqlmodel import Session, col, select

from contracts.conversations import (
    ConversationPage,
    ConversationReply,
    GetConversation,
    GetMessageLimits,
    GetPortalFeatures,
    ListConversations,
    MessageLimits,
    PostedMessage,
    PortalFeatures,
    PostMessage,
    ReopenConversation,
    StartConversation,
)
from contracts.conversations import Viewer
from contracts.errors import ErrorCode, ServiceError
from services.conversations import domain, idempotency, store, views
from services.conversations.models import Conversation, ConversationViewer, Message
from services.runtime.db import UtcDateTime
from services.runtime.settings import Settings

def portal_open(session: Session, viewer: Viewer) -> store.PortalRules:
    config = store.portal_config(session, viewer.portal, viewer.org_id)
    if not config.my_conversations_enabled:
        raise ServiceError(ErrorCode.my_conversations_disabled,
                           f"My Conversations is turned off on portal '{viewer.portal}'.")
    return config


def _read_at(session: Session, viewer: Viewer, conversation_id: str) -> ConversationViewer | None:
    return session.get(ConversationViewer, (domain.viewer_key(viewer), conversation_id))


def _remember(session: Session, viewer: Viewer) -> None:
    store.remember_customer(session, user_id=viewer.user_id, org_id=viewer.org_id, email=viewer.email,
                            display_name=viewer.display_name, kind=viewer.kind)


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
                          reopen_enabled=config.reopen_enabled, max_body_chars=limits.max_body_chars,
                          max_files=limits.max_files, max_file_bytes=limits.max_file_bytes)


def list_conversations(session: Session, request: ListConversations) -> ConversationPage:
    viewer = request.viewer
    portal_open(session, viewer)
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
    config = portal_open(session, request.viewer)
    conversation = store.visible(session, request.viewer, request.conversation_id)
    row = _read_at(session, request.viewer, conversation.id)
    detail = views.detail(session, conversation, config, row.read_at if row else None)
    if row is not None:  # opening it marks the agent's answers read
        row.read_at = store.now()
        session.add(row)
    return ConversationReply(conversation=detail)


def _check_message(settings: Settings, config: store.PortalRules, body: str,
                   request: StartConversation | PostMessage) -> str:
    return domain.check_message(body, request.attachments, store.limits_of(config, settings))


def start_conversation(settings: Settings, session: Session, request: StartConversation) -> ConversationReply:
    viewer = request.viewer
    claim = idempotency.claim(session, domain.viewer_key(viewer), request.idempotency_key, domain.fingerprint(
        "start", request.subject, request.body, [a.sha256 for a in request.attachments]), ConversationReply)
    if isinstance(claim, ConversationReply):
        return claim
    config = portal_open(session, viewer)
    body = _check_message(settings, config, request.body, request)
    _remember(session, viewer)
    conversation = store.create_conversation(
        session, org_id=viewer.org_id, portal=viewer.portal, customer_id=viewer.user_id, channel="portal",
        subject=request.subject, viewers=store.viewers_of(viewer))
    store.add_message(session, conversation, author=store.Author(viewer.user_id, "customer"), body=body,
                      channel="portal", attachments=request.attachments)
    session.flush()
    reply = ConversationReply(conversation=views.detail(session, conversation, config, store.now()))
    return claim.answer(session, reply, conversation.id)


def _reopen_for_customer(session: Session, viewer: Viewer, config: store.PortalRules,
                         conversation: Conversation) -> Conversation:
    """Reopen under the portal's policy; may answer with a new conversation linked to the closed one."""
    return store.reopen_on_request(session, conversation, config, author=store.Author(viewer.user_id, "customer"),
                                   viewers=store.viewers_of(viewer))


def post_message(settings: Settings, session: Session, request: PostMessage) -> PostedMessage:
    viewer = request.viewer
    claim = idempotency.claim(session, domain.viewer_key(viewer), request.idempotency_key, domain.fingerprint(
        "post", request.conversation_id, request.body, request.reopen, [a.sha256 for a in request.attachments]),
        PostedMessage)
    if isinstance(claim, PostedMessage):
        return claim
    config = portal_open(session, viewer)
    conversation = store.visible(session, viewer, request.conversation_id)
    body = _check_message(settings, config, request.body, request)
    reopened = False
    if conversation.status == "closed":
        if not request.reopen:
            raise ServiceError(ErrorCode.conversation_closed, "This conversation is closed; send the message with "
                                                              "`reopen: true` to reopen it, or start a new one.")
        conversation = _reopen_for_customer(session, viewer, config, conversation)
        reopened = True
    _remember(session, viewer)
    # A customer writing from the portal is on the portal now: answers reach them by e-mail from here.
    conversation.reply_channel = "portal"
    message = store.add_message(session, conversation, author=store.Author(viewer.user_id, "customer"), body=body,
                                channel="portal", attachments=request.attachments)
    session.flush()
    view = views.posted(message, request.attachments, viewer.display_name or viewer.email)
    reply = PostedMessage(conversation_id=conversation.id, message=view, reopened=reopened)
    return claim.answer(session, reply, message.id)


def reopen_conversation(session: Session, request: ReopenConversation) -> ConversationReply:
    viewer = request.viewer
    claim = idempotency.claim(session, domain.viewer_key(viewer), request.idempotency_key,
                              domain.fingerprint("reopen", request.conversation_id), ConversationReply)
    if isinstance(claim, ConversationReply):
        return claim
    config = portal_open(session, viewer)
    conversation = store.visible(session, viewer, request.conversation_id)
    if conversation.status == "closed":
        conversation = _reopen_for_customer(session, viewer, config, conversation)
    session.flush()
    reply = ConversationReply(conversation=views.detail(session, conversation, config, store.now()))
    return claim.answer(session, reply, conversation.id)
