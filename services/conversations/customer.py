"""The customer's side, through the portal: My Conversations, new conversations, messages, reopen."""

from sqlmodel import Session

from contracts.conversations import (
    ConversationReply,
    PostedMessage,
    PostMessage,
    ReopenConversation,
    StartConversation,
)
from contracts.conversations import Viewer
from contracts.errors import ErrorCode, ServiceError
from services.conversations import domain, idempotency, store, views
from services.conversations.models import Conversation
from services.runtime.settings import Settings


def _remember(session: Session, viewer: Viewer) -> None:
    store.remember_customer(session, user_id=viewer.user_id, org_id=viewer.org_id, email=viewer.email,
                            display_name=viewer.display_name, kind=viewer.kind)


def _check_message(settings: Settings, config: store.PortalRules, body: str,
                   request: StartConversation | PostMessage) -> str:
    return domain.check_message(body, request.attachments, store.limits_of(config, settings))


def start_conversation(settings: Settings, session: Session, request: StartConversation) -> ConversationReply:
    viewer = request.viewer
    claim = idempotency.claim(session, domain.viewer_key(viewer), request.idempotency_key, lambda: domain.fingerprint(
        "start", request.subject, request.body, [a.sha256 for a in request.attachments]), ConversationReply)
    if isinstance(claim, ConversationReply):
        return claim
    config = store.portal_open(session, viewer)
    body = _check_message(settings, config, request.body, request)
    _remember(session, viewer)
    conversation = store.create_conversation(
        session, org_id=viewer.org_id, portal=viewer.portal, customer_id=viewer.user_id, channel=request.channel,
        subject=request.subject, viewers=store.viewers_of(viewer))
    message = store.add_message(session, conversation, author=store.Author(viewer.user_id, "customer"), body=body,
                                channel=request.channel, attachments=request.attachments)
    # Its only message is the one just written: the answer is built from it, not read back.
    first = views.posted(message, request.attachments, store.account_name(session, viewer.user_id))
    reply = ConversationReply(conversation=views.detail(session, conversation, config, store.now(), [first]))
    return claim.answer(session, reply, conversation.id)


def _reopen_for_customer(session: Session, viewer: Viewer, config: store.PortalRules,
                         conversation: Conversation) -> Conversation:
    """Reopen under the portal's policy; may answer with a new conversation linked to the closed one."""
    return store.reopen_on_request(session, conversation, config, author=store.Author(viewer.user_id, "customer"),
                                   viewers=store.viewers_of(viewer))


def post_message(settings: Settings, session: Session, request: PostMessage) -> PostedMessage:
    viewer = request.viewer
    claim = idempotency.claim(session, domain.viewer_key(viewer), request.idempotency_key, lambda: domain.fingerprint(
        "post", request.conversation_id, request.body, request.reopen, [a.sha256 for a in request.attachments]),
        PostedMessage)
    if isinstance(claim, PostedMessage):
        return claim
    config = store.portal_open(session, viewer)
    conversation = store.visible(session, viewer, request.conversation_id, for_update=True)
    body = _check_message(settings, config, request.body, request)
    reopened = False
    if conversation.status == "closed":
        if not request.reopen:
            raise ServiceError(ErrorCode.conversation_closed, "This conversation is closed; send the message with "
                                                              "`reopen: true` to reopen it, or start a new one.")
        conversation = _reopen_for_customer(session, viewer, config, conversation)
        reopened = True
    _remember(session, viewer)
    # A customer writing from the portal (or its chat) is there now: answers go back that way.
    conversation.reply_channel = request.channel
    message = store.add_message(session, conversation, author=store.Author(viewer.user_id, "customer"), body=body,
                                channel=request.channel, attachments=request.attachments)
    view = views.posted(message, request.attachments, viewer.display_name or viewer.email)
    reply = PostedMessage(conversation_id=conversation.id, message=view, reopened=reopened)
    return claim.answer(session, reply, message.id)


def reopen_conversation(session: Session, request: ReopenConversation) -> ConversationReply:
    viewer = request.viewer
    claim = idempotency.claim(session, domain.viewer_key(viewer), request.idempotency_key,
                              lambda: domain.fingerprint("reopen", request.conversation_id), ConversationReply)
    if isinstance(claim, ConversationReply):
        return claim
    config = store.portal_open(session, viewer)
    conversation = store.visible(session, viewer, request.conversation_id, for_update=True)
    if conversation.status == "closed":
        conversation = _reopen_for_customer(session, viewer, config, conversation)
    reply = ConversationReply(conversation=views.detail(session, conversation, config, store.now()))
    return claim.answer(session, reply, conversation.id)
