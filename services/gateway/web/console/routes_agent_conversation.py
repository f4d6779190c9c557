"""One conversation in the agent workspace: `GET /agent/conversations/{id}` (the whole timeline with internal
notes, the customer and their other conversations, the forms) and the two composers,
`POST …/{id}/reply` (an answer to the customer) and `POST …/{id}/note` (an internal note), each a plain
multipart form with files, answered with a 303 back to the conversation. The other actions (close,
reopen, subject, assignment, attributes, redaction) are in `routes_agent_actions.py`.

Each calls the operation the agent JSON API calls (`services/gateway/routes_agent.py`); the form and its
files are read by `services.gateway.web.routes_compose.send_form`, as the portal's composers are (through
`services.gateway.uploads.read_message`, as the JSON API's multipart bodies).

Before an answer is sent, the page checks that no customer message arrived after the one the agent saw
when the page was drawn (`seen_message`): if one did, the form comes back with the text kept, a warning
and "Send anyway" (`confirm_newer`). It is a courtesy of the page, not a rule: the API sends at once.
"""

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts import operations
from contracts.conversations import (
    AgentConversationDetail,
    AgentGetConversation,
    AgentInbox,
    AgentPostMessage,
    GetMessageLimits,
    ListAssignees,
    MessageLimits,
)
from contracts.roles import Permission
from services.gateway.uploads import Incoming
from services.gateway.web.console.routes_inbox import live_from, staff_name
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.routes_compose import Answer, send_form
from services.gateway.web.routes_conversations import names
from services.runtime.files import ALLOWED_TYPES

router = APIRouter(include_in_schema=False)

ConversationId = Path(min_length=1, max_length=26)
OTHERS = 10  # the customer's other conversations shown beside this one


class ReplyForm(BaseModel):
    """The answer composer's fields (and `files`, read by `read_message`)."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=1_000_000)
    idempotency_key: str = Field(default="", max_length=200)
    seen_message: str = Field(default="", max_length=26, description="The newest customer message on the page.")
    confirm_newer: bool = Field(default=False, description="Send although a newer customer message arrived.")
    reopen: bool = Field(default=False, description="The conversation is closed: reopen it with this answer.")


class NoteForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=1_000_000)
    idempotency_key: str = Field(default="", max_length=200)


@dataclass
class Draft:
    """A composer after a refusal or a warning: the text as typed, errors by field (`body`, `files`, `form`),
    and whether a newer customer message stopped the answer."""

    body: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    refused: bool = False
    newer: bool = False


@dataclass
class Forms:
    """What the page's forms show again after a refusal."""

    reply: Draft = field(default_factory=Draft)
    note: Draft = field(default_factory=Draft)
    subject: str | None = None
    subject_error: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    attributes_error: str = ""
    notice: str = ""


def newest_customer_message(detail: AgentConversationDetail) -> str:
    """Id of the newest message the customer wrote (empty when there is none)."""
    for message in reversed(detail.messages):
        if message.kind == "message" and message.author_kind == "customer":
            return message.id
    return ""


async def conversation_page(request: Request, staff: Staff, conversation_id: str, forms: Forms | None = None, *,
                            status: int = 200) -> HTMLResponse:
    """The conversation page, with `forms` as they were sent after a refusal."""
    since = live_from(request)
    rpc = request.app.state.rpc
    detail, team, limits = await asyncio.gather(
        rpc.call(operations.conversations.agent_get_conversation,
                 AgentGetConversation(actor=staff.actor, conversation_id=conversation_id)),
        rpc.call(operations.conversations.list_assignees, ListAssignees(actor=staff.actor)),
        rpc.call(operations.conversations.message_limits, GetMessageLimits(
            org_id=staff.record.org_id, conversation_id=conversation_id)))
    conversation = detail.conversation
    others = await rpc.call(operations.conversations.agent_inbox, AgentInbox(
        actor=staff.actor, customer_id=conversation.customer_id, limit=OTHERS + 1))
    members = {m.id: staff_name(m) for m in team.staff}
    custom = [(a.attribute.removeprefix("custom."), a.display_name) for a in detail.detail_attributes
              if a.attribute.startswith("custom.")]
    chosen = {name for name, label in custom}
    forms = forms or Forms()
    return staff_page(
        request, staff, "staff/agent_conversation.html", section="inbox", status=status, conv=conversation, messages=detail.messages, members=members, team=team.staff, me=staff.user_id,
        others=[c for c in others.conversations if c.id != conversation.id][:OTHERS],
        custom=custom, attribute_labels=dict(custom),
        extra={k: v for k, v in conversation.attributes.items() if k not in chosen},
        seen_message=newest_customer_message(detail), forms=forms, key=new_key(), live_from=since,
        limits=composer_limits(limits), staff_name=staff_name, **names(request))


def composer_limits(limits: MessageLimits) -> dict[str, Any]:
    """The conversation's limits as the composers show them (hints, the file field's `accept`)."""
    types = set(ALLOWED_TYPES)
    extensions = sorted(types | {"jpeg"} if "jpg" in types else types)
    return {"max_chars": limits.max_body_chars, "max_files": limits.max_files, "max_bytes": limits.max_file_bytes,
            "extensions": extensions, "types": ", ".join(e.upper() for e in sorted(types))}


def new_key() -> str:
    """An idempotency key for one rendering of a composer: a second click on Send sends nothing new."""
    return secrets.token_urlsafe(18)


@router.get("/agent/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation(request: Request, conversation_id: str = ConversationId) -> HTMLResponse:
    staff = await require_staff(request, Permission.work_conversations)
    return await conversation_page(request, staff, conversation_id)


@router.get("/agent/conversations/{conversation_id}/reply", response_class=Response)
@router.get("/agent/conversations/{conversation_id}/note", response_class=Response)
async def composer_address(conversation_id: str = ConversationId) -> Response:
    """A refused form's address, opened again (a reload, a bookmark): the conversation."""
    return see_other(f"/agent/conversations/{conversation_id}")


@router.post("/agent/conversations/{conversation_id}/reply", response_class=Response)
async def reply(request: Request, conversation_id: str = ConversationId) -> Response:
    """An answer to the customer; stopped once, with the text kept, when a newer customer message came."""
    return await send_from_composer(request, conversation_id, internal=False)


@router.post("/agent/conversations/{conversation_id}/note", response_class=Response)
async def note(request: Request, conversation_id: str = ConversationId) -> Response:
    """An internal note: staff only, never shown, sent or e-mailed to the customer."""
    return await send_from_composer(request, conversation_id, internal=True)


async def send_from_composer(request: Request, conversation_id: str, *, internal: bool) -> Response:
    """An answer (`internal` False: first the check for a newer customer message) or an internal note, then a
    303 to it; a refusal, or a newer message (409), shows the page again with that composer's text kept."""
    staff = await require_staff(request, Permission.work_conversations)
    rpc = request.app.state.rpc

    def again(draft: Draft) -> Forms:
        return Forms(note=draft) if internal else Forms(reply=draft)

    async def send(incoming: Incoming) -> Answer:
        fields = incoming.fields
        if not internal and not fields["confirm_newer"]:
            current = await rpc.call(operations.conversations.agent_get_conversation,
                                     AgentGetConversation(actor=staff.actor, conversation_id=conversation_id))
            newest = newest_customer_message(current)
            if newest and newest != fields["seen_message"]:
                draft = Draft(body=str(fields["body"]), refused=bool(incoming.attachments), newer=True)
                return await conversation_page(request, staff, conversation_id, again(draft), status=409), False
        posted = await rpc.call(operations.conversations.agent_post_message, AgentPostMessage(
            actor=staff.actor, conversation_id=conversation_id, body=fields["body"], internal=internal,
            reopen=fields.get("reopen", False), attachments=incoming.attachments,
            idempotency_key=fields["idempotency_key"] or None))
        return see_other(f"/agent/conversations/{conversation_id}#message-{posted.message.id}"), not posted.replayed

    async def refused(typed: dict[str, str], errors: dict[str, str], status: int) -> Response:
        draft = Draft(body=typed.get("body", ""), errors=errors, refused=True)
        return await conversation_page(request, staff, conversation_id, again(draft), status=status)

    return await send_form(request, NoteForm if internal else ReplyForm, send, refused, org_id=staff.record.org_id,
                           conversation_id=conversation_id)
