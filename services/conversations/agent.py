"""The agents' side: inbox, the whole timeline with internal notes, replies, notes, close, reopen,
subject, assignment, attributes. Redaction, which also erases stored copies, is in `redaction.py`."""

from sqlmodel import Session

from contracts.conversations import (
    AgentAction,
    AgentAssign,
    AgentChangeSubject,
    AgentConversationReply,
    AgentPostMessage,
    AgentSetAttributes,
    PostedMessage,
)
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Actor
from services.conversations import domain, idempotency, store, views
from services.conversations.models import Conversation, Customer
from services.runtime.settings import Settings


def _conversation(session: Session, actor: Actor, conversation_id: str) -> Conversation:
    store.agent_author(actor)
    return store.of_org(session, actor.org_id, conversation_id, for_update=True)


def post_message(settings: Settings, session: Session, request: AgentPostMessage) -> PostedMessage:
    me = store.agent_author(request.actor)
    claim = idempotency.claim(session, request.actor.principal, request.idempotency_key, lambda: domain.fingerprint(
        "agent_post", request.conversation_id, request.body, request.internal, request.reopen,
        [a.sha256 for a in request.attachments]), PostedMessage)
    if isinstance(claim, PostedMessage):
        return claim
    conversation = store.load(session, request.actor.org_id, request.conversation_id)
    config = store.portal_config(session, conversation.portal, conversation.org_id)
    body = domain.check_message(request.body, request.attachments, store.limits_of(config, settings))
    reopened = False
    # A note may go on a closed conversation; an answer to the customer reopens it only when asked to.
    if conversation.status == "closed" and not request.internal:
        if not request.reopen:
            raise ServiceError(ErrorCode.conversation_closed,
                               "This conversation is closed; send with `reopen: true` to reopen it.")
        store.reopen(session, conversation, author=me)
        reopened = True
    message = store.add_message(session, conversation, author=me, body=body, channel=conversation.reply_channel,
                                internal=request.internal, attachments=request.attachments)
    # An author with a name of its own (an API key) has no account to read it from.
    name = store.account_name(session, me.id) if me.id and me.name is None else None
    view = views.posted(message, request.attachments, name or me.name)
    return claim.answer(session, PostedMessage(conversation_id=conversation.id, message=view, reopened=reopened),
                        message.id)


def close(session: Session, request: AgentAction) -> AgentConversationReply:
    conversation = _conversation(session, request.actor, request.conversation_id)
    store.close(session, conversation, author=store.agent_author(request.actor))
    return views.agent_reply(session, conversation)


def reopen(session: Session, request: AgentAction) -> AgentConversationReply:
    conversation = _conversation(session, request.actor, request.conversation_id)
    store.reopen(session, conversation, author=store.agent_author(request.actor))
    return views.agent_reply(session, conversation)


def change_subject(session: Session, request: AgentChangeSubject) -> AgentConversationReply:
    conversation = _conversation(session, request.actor, request.conversation_id)
    subject = domain.check_subject(request.subject)
    if subject != conversation.subject:
        previous, conversation.subject = conversation.subject, subject
        store.add_event(session, conversation, author=store.agent_author(request.actor), event="subject_changed",
                        detail={"from": previous, "to": subject})
    return views.agent_reply(session, conversation)


def assign(session: Session, request: AgentAssign) -> AgentConversationReply:
    conversation = _conversation(session, request.actor, request.conversation_id)
    if request.assignee_id is not None:
        staff = session.get(Customer, request.assignee_id)
        if staff is None or staff.org_id != request.actor.org_id or staff.kind != "staff":
            raise ServiceError(ErrorCode.invalid_request, "assignee_id: not a staff member of this organisation.")
    if request.assignee_id != conversation.assignee_id:
        conversation.assignee_id = request.assignee_id
        store.add_event(session, conversation, author=store.agent_author(request.actor), event="assigned",
                        detail={"assignee_id": request.assignee_id}, internal=True)
    return views.agent_reply(session, conversation)


def set_attributes(session: Session, request: AgentSetAttributes) -> AgentConversationReply:
    conversation = _conversation(session, request.actor, request.conversation_id)
    values = dict(conversation.attributes)
    for name, value in request.values.items():
        if not name or len(name) > 50 or not name.replace("_", "").isalnum():
            raise ServiceError(ErrorCode.invalid_request, f"values: '{name[:60]}' is not an attribute name "
                                                          "(letters, digits and _, at most 50).")
        if isinstance(value, str) and len(value) > 1000:
            raise ServiceError(ErrorCode.invalid_request, f"values.{name}: at most 1,000 characters.")
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    conversation.attributes = values
    store.add_event(session, conversation, author=store.agent_author(request.actor), event="attributes_changed",
                    detail={"names": sorted(request.values)}, internal=True)
    return views.agent_reply(session, conversation)
