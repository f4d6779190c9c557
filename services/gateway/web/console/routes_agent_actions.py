"""The agent's actions on a conversation, each a plain form answered with a 303 back to it:
`POST /agent/conversations/{id}/close`, `…/reopen`, `…/subject`, `…/assign`, `…/attributes`, and redacting
a message: `GET …/messages/{message_id}/redact` (the confirmation, which says the text is erased for
good; with JavaScript a `<dialog>` on the conversation page asks the same) then `POST` to it.

Each calls the operation the agent JSON API calls (`services/gateway/routes_agent.py`) through `act`; a
refusal shows the conversation again with the words next to the form and what was typed kept.
"""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

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
from contracts.operations import Operation
from contracts.roles import Permission
from services.gateway.web.console.routes_agent_conversation import ConversationId, Forms, conversation_page
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.rendering import gettext
from services.gateway.web.routes_compose import SUBJECT_WORDS
from services.gateway.web.words import _, say

router = APIRouter(include_in_schema=False)

MessageId = Path(min_length=1, max_length=26)
ATTRIBUTE_WORDS = _("Each value can be at most 1,000 characters.")
ATTRIBUTE_FIELD = "attribute."  # the form's field for custom attribute `x` is `attribute.x`
AgentActionT = TypeVar("AgentActionT", bound=AgentAction)


async def act(request: Request, staff: Staff, operation: Operation[AgentActionT, Any], payload: AgentActionT, *,
              anchor: str = "", shown: ErrorCode | None = None, forms: Callable[[ServiceError], Forms] | None = None,
              timeout: float | None = None) -> Response:
    """`operation` called with `payload` (within `timeout` seconds; default the RPC's), then a 303 back to the
    conversation at `anchor`. A refusal with the code `shown` draws the conversation again with
    `forms(error)` and the error's status; any other `ServiceError` is raised."""
    try:
        await request.app.state.rpc.call(operation, payload, timeout=timeout)
    except ServiceError as error:
        if forms is None or error.code is not shown:
            raise
        return await conversation_page(request, staff, payload.conversation_id, forms(error), status=error.status)
    return see_other(f"/agent/conversations/{payload.conversation_id}" + (f"#{anchor}" if anchor else ""))


@router.post("/agent/conversations/{conversation_id}/close", response_class=Response)
async def close(request: Request, conversation_id: str = ConversationId) -> Response:
    staff = await require_staff(request, Permission.work_conversations)
    return await act(request, staff, operations.conversations.agent_close,
                     AgentAction(actor=staff.actor, conversation_id=conversation_id), anchor="conversation-state")


@router.post("/agent/conversations/{conversation_id}/reopen", response_class=Response)
async def reopen(request: Request, conversation_id: str = ConversationId) -> Response:
    staff = await require_staff(request, Permission.work_conversations)
    return await act(request, staff, operations.conversations.agent_reopen,
                     AgentAction(actor=staff.actor, conversation_id=conversation_id), anchor="conversation-state")


@router.post("/agent/conversations/{conversation_id}/subject", response_class=Response)
async def change_subject(request: Request, subject: Annotated[str, Form(max_length=2000)] = "",
                         conversation_id: str = ConversationId) -> Response:
    staff = await require_staff(request, Permission.work_conversations)
    return await act(request, staff, operations.conversations.agent_change_subject, AgentChangeSubject(
        actor=staff.actor, conversation_id=conversation_id, subject=subject), shown=ErrorCode.invalid_request,
        forms=lambda error: Forms(subject=subject, subject_error=gettext(request, SUBJECT_WORDS)))


@router.post("/agent/conversations/{conversation_id}/assign", response_class=Response)
async def assign(request: Request, assignee: Annotated[str, Form(max_length=40)] = "",
                 conversation_id: str = ConversationId) -> Response:
    """`assignee`: a staff member's id, `me`, or empty to unassign."""
    staff = await require_staff(request, Permission.work_conversations)
    assignee_id = staff.user_id if assignee == "me" else (assignee or None)
    return await act(request, staff, operations.conversations.agent_assign, AgentAssign(
        actor=staff.actor, conversation_id=conversation_id, assignee_id=assignee_id), shown=ErrorCode.invalid_request,
        forms=lambda error: Forms(notice=gettext(request, "That staff member cannot be assigned. Choose another.")))


@router.post("/agent/conversations/{conversation_id}/attributes", response_class=Response)
async def set_attributes(request: Request, conversation_id: str = ConversationId) -> Response:
    """The portal's custom detail attributes, from fields `attribute.<name>`; an empty field removes one."""
    staff = await require_staff(request, Permission.work_conversations)
    form = await request.form()
    typed = {key.removeprefix(ATTRIBUTE_FIELD): str(value) for key, value in form.multi_items()
             if key.startswith(ATTRIBUTE_FIELD) and isinstance(value, str)}
    values: dict[str, str | None] = {name: value.strip() or None for name, value in typed.items()}
    return await act(request, staff, operations.conversations.agent_set_attributes, AgentSetAttributes(
        actor=staff.actor, conversation_id=conversation_id, values=values), anchor="attributes",
        shown=ErrorCode.invalid_request,
        forms=lambda error: Forms(attributes=typed, attributes_error=gettext(request, ATTRIBUTE_WORDS)))


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
    return await act(request, staff, operations.conversations.agent_redact, AgentRedact(
        actor=staff.actor, conversation_id=conversation_id, message_id=message_id), timeout=15,
        anchor=f"message-{message_id}", shown=ErrorCode.not_found,
        forms=lambda error: Forms(notice=say(request, error)))
