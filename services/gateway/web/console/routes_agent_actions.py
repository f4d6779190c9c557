"""The agent's actions on a conversation, each a plain form answered with a 303 back to it:
`POST /agent/conversations/{id}/close`, `…/reopen`, `…/subject`, `…/assign`, `…/attributes`, and redacting
a message: `GET …/messages/{message_id}/redact` (the confirmation, which says the text is erased for
good; with JavaScript a `<dialog>` on the conversation page asks the same) then `POST` to it.

Each calls the operation the agent JSON API calls (`services/gateway/routes_agent.py`); a refusal shows the
conversation again with the words next to the form and what was typed kept.
"""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from contracts import operations
from contracts.conversations import (
    AgentAction,
    AgentAssign,
    AgentChangeSubject,
    AgentGetConversation,
    AgentRedact,
    AgentSetAttributes,
)
from contracts.errors import ErrorCode, ServiceError
from contracts.roles import Permission
from services.gateway.web.console.routes_agent_conversation import ConversationId, Forms, conversation_page
from services.gateway.web.console.staff import require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.rendering import gettext
from services.gateway.web.routes_compose import SUBJECT_WORDS
from services.gateway.web.words import _, say

router = APIRouter(include_in_schema=False)

MessageId = Path(min_length=1, max_length=26)
ATTRIBUTE_WORDS = _("Each value can be at most 1,000 characters.")
ATTRIBUTE_FIELD = "attribute."  # the form's field for custom attribute `x` is `attribute.x`


def back(conversation_id: str, anchor: str = "") -> Response:
    return see_other(f"/agent/conversations/{conversation_id}" + (f"#{anchor}" if anchor else ""))


@router.post("/agent/conversations/{conversation_id}/close", response_class=Response)
async def close(request: Request, conversation_id: str = ConversationId) -> Response:
    staff = await require_staff(request, Permission.work_conversations)
    await request.app.state.rpc.call(operations.conversations.agent_close,
                                     AgentAction(actor=staff.actor, conversation_id=conversation_id))
    return back(conversation_id, "conversation-state")


@router.post("/agent/conversations/{conversation_id}/reopen", response_class=Response)
async def reopen(request: Request, conversation_id: str = ConversationId) -> Response:
    staff = await require_staff(request, Permission.work_conversations)
    await request.app.state.rpc.call(operations.conversations.agent_reopen,
                                     AgentAction(actor=staff.actor, conversation_id=conversation_id))
    return back(conversation_id, "conversation-state")


@router.post("/agent/conversations/{conversation_id}/subject", response_class=Response)
async def change_subject(request: Request, subject: Annotated[str, Form(max_length=2000)] = "",
                         conversation_id: str = ConversationId) -> Response:
    staff = await require_staff(request, Permission.work_conversations)
    try:
        await request.app.state.rpc.call(operations.conversations.agent_change_subject, AgentChangeSubject(
            actor=staff.actor, conversation_id=conversation_id, subject=subject))
    except ServiceError as error:
        if error.code is not ErrorCode.invalid_request:
            raise
        forms = Forms(subject=subject, subject_error=gettext(request, SUBJECT_WORDS))
        return await conversation_page(request, staff, conversation_id, forms, status=error.status)
    return back(conversation_id)


@router.post("/agent/conversations/{conversation_id}/assign", response_class=Response)
async def assign(request: Request, assignee: Annotated[str, Form(max_length=40)] = "",
                 conversation_id: str = ConversationId) -> Response:
    """`assignee`: a staff member's id, `me`, or empty to unassign."""
    staff = await require_staff(request, Permission.work_conversations)
    assignee_id = staff.user_id if assignee == "me" else (assignee or None)
    try:
        await request.app.state.rpc.call(operations.conversations.agent_assign, AgentAssign(
            actor=staff.actor, conversation_id=conversation_id, assignee_id=assignee_id))
    except ServiceError as error:
        if error.code is not ErrorCode.invalid_request:
            raise
        forms = Forms(notice=gettext(request, "That staff member cannot be assigned. Choose another."))
        return await conversation_page(request, staff, conversation_id, forms, status=error.status)
    return back(conversation_id)


@router.post("/agent/conversations/{conversation_id}/attributes", response_class=Response)
async def set_attributes(request: Request, conversation_id: str = ConversationId) -> Response:
    """The portal's custom detail attributes, from fields `attribute.<name>`; an empty field removes one."""
    staff = await require_staff(request, Permission.work_conversations)
    form = await request.form()
    typed = {key.removeprefix(ATTRIBUTE_FIELD): str(value) for key, value in form.multi_items()
             if key.startswith(ATTRIBUTE_FIELD) and isinstance(value, str)}
    values: dict[str, str | None] = {name: value.strip() or None for name, value in typed.items()}
    try:
        await request.app.state.rpc.call(operations.conversations.agent_set_attributes, AgentSetAttributes(
            actor=staff.actor, conversation_id=conversation_id, values=values))
    except ServiceError as error:
        if error.code is not ErrorCode.invalid_request:
            raise
        forms = Forms(attributes=typed, attributes_error=gettext(request, ATTRIBUTE_WORDS))
        return await conversation_page(request, staff, conversation_id, forms, status=error.status)
    return back(conversation_id, "attributes")


@router.get("/agent/conversations/{conversation_id}/messages/{message_id}/redact", response_class=HTMLResponse)
async def confirm_redaction(request: Request, conversation_id: str = ConversationId,
                            message_id: str = MessageId) -> HTMLResponse:
    """The confirmation before erasing a message (without JavaScript; with it, the page's dialog)."""
    staff = await require_staff(request, Permission.work_conversations)
    detail = await request.app.state.rpc.call(operations.conversations.agent_get_conversation, AgentGetConversation(
        actor=staff.actor, conversation_id=conversation_id))
    message = next((m for m in detail.messages if m.id == message_id and m.kind != "event"), None)
    if message is None:
        raise ServiceError(ErrorCode.not_found, "No such message in this conversation.")
    return staff_page(request, staff, "staff/agent_redact.html", section="inbox", conv=detail.conversation,
                      message=message)


@router.post("/agent/conversations/{conversation_id}/messages/{message_id}/redact", response_class=Response)
async def redact(request: Request, conversation_id: str = ConversationId, message_id: str = MessageId) -> Response:
    staff = await require_staff(request, Permission.work_conversations)
    try:
        await request.app.state.rpc.call(operations.conversations.agent_redact, AgentRedact(
            actor=staff.actor, conversation_id=conversation_id, message_id=message_id), timeout=15)
    except ServiceError as error:
        if error.code is not ErrorCode.not_found:
            raise
        forms = Forms(notice=say(request, error))
        return await conversation_page(request, staff, conversation_id, forms, status=error.status)
    return back(conversation_id, f"message-{message_id}")
