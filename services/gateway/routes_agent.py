"""The agent API: inbox, conversation with internal notes, reply, note, close, reopen, subject, assign,
attributes, redact."""

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import operations
from contracts.conversations import (
    AgentAction,
    AgentAssign,
    AgentChangeSubject,
    AgentConversationDetail,
    AgentConversationReply,
    AgentGetConversation,
    AgentInbox,
    AgentInboxPage,
    AgentPostMessage,
    AgentRedact,
    AgentSetAttributes,
    AssigneeList,
    GetAttachment,
    ListAssignees,
    PostedMessage,
    Status,
)
from contracts.events import Channel
from contracts.rpc import ListPortals, PortalList
from services.gateway.auth import AgentActor, agent
from services.gateway.deps import Rpc
from services.gateway.routes_conversations import JSON, ConversationId, IdempotencyKey, send_file
from services.gateway.uploads import message_request_body, owned_by_reply, read_message

router = APIRouter(tags=["agent"])


class AgentMessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=1_000_000)
    internal: bool = Field(default=False, description="An internal note: never shown, sent or e-mailed to customers.")
    reopen: bool = Field(default=False, description="Reopen the conversation if it is closed.")


class SubjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(max_length=2000)


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee_id: str | None = Field(default=None, max_length=26, description="A staff member's id; null unassigns.")


class AttributesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, str | int | float | bool | None] = Field(max_length=50)


@router.get("/api/v1/agent/conversations", response_model=AgentInboxPage, summary="Agent inbox")
async def inbox(request: Request, status: Status | None = None, channel: Channel | None = None,
                portal: str | None = Query(default=None, max_length=100),
                assignee: str | None = Query(default=None, max_length=40, description="Staff id, `me` or `none`"),
                customer_id: str | None = Query(default=None, max_length=26, description="One customer's only"),
                q: str | None = Query(default=None, max_length=200, description=(
                    "Words in the subject, the customer's e-mail, or any message or internal note")),
                cursor: str | None = Query(default=None, max_length=200),
                limit: int = Query(default=25, ge=1, le=100)) -> Response:
    actor, rpc = await agent(request)
    return Response(await rpc.call_json(operations.conversations.agent_inbox, AgentInbox(
        actor=actor, status=status, channel=channel, portal=portal, assignee=assignee, customer_id=customer_id, q=q,
        cursor=cursor, limit=limit)), media_type=JSON)


@router.get("/api/v1/agent/portals", response_model=PortalList, summary="The organisation's portals")
async def portals(request: Request) -> PortalList:
    actor, rpc = await agent(request)
    return await rpc.call(operations.auth.list_portals, ListPortals(actor=actor))


@router.get("/api/v1/agent/assignees", response_model=AssigneeList,
            summary="The staff a conversation may be assigned to")
async def assignees(request: Request) -> AssigneeList:
    actor, rpc = await agent(request)
    return await rpc.call(operations.conversations.list_assignees, ListAssignees(actor=actor))


@router.get("/api/v1/agent/conversations/{conversation_id}", response_model=AgentConversationDetail,
            summary="A conversation with everything, internal notes included")
async def conversation(request: Request, conversation_id: str = ConversationId) -> Response:
    actor, rpc = await agent(request)
    return Response(await rpc.call_json(operations.conversations.agent_get_conversation,
                                        AgentGetConversation(actor=actor, conversation_id=conversation_id)),
                    media_type=JSON)


@router.post("/api/v1/agent/conversations/{conversation_id}/messages", status_code=201, response_model=PostedMessage,
             openapi_extra=message_request_body(AgentMessageBody),
             summary="Reply to the customer, or add an internal note (`internal: true`)")
async def post_message(request: Request, response: Response,
                       idempotency_key: IdempotencyKey = None,
                       conversation_id: str = ConversationId) -> PostedMessage:
    actor, rpc = await agent(request)
    incoming = await read_message(request, rpc, AgentMessageBody, org_id=actor.org_id, conversation_id=conversation_id)
    async with owned_by_reply(request, incoming) as kept:
        posted = await rpc.call(operations.conversations.agent_post_message, AgentPostMessage(
            actor=actor, conversation_id=conversation_id, body=incoming.fields["body"],
            internal=incoming.fields["internal"], reopen=incoming.fields["reopen"], attachments=incoming.attachments,
            idempotency_key=idempotency_key))
        kept[0] = not posted.replayed
    if posted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return posted


@router.post("/api/v1/agent/conversations/{conversation_id}/close", response_model=AgentConversationReply)
async def close(request: Request, conversation_id: str = ConversationId) -> AgentConversationReply:
    actor, rpc = await agent(request)
    return await rpc.call(operations.conversations.agent_close,
                          AgentAction(actor=actor, conversation_id=conversation_id))


@router.post("/api/v1/agent/conversations/{conversation_id}/reopen", response_model=AgentConversationReply)
async def reopen(request: Request, conversation_id: str = ConversationId) -> AgentConversationReply:
    actor, rpc = await agent(request)
    return await rpc.call(operations.conversations.agent_reopen,
                          AgentAction(actor=actor, conversation_id=conversation_id))


@router.post("/api/v1/agent/conversations/{conversation_id}/subject", response_model=AgentConversationReply,
             summary="Change the subject (the customer sees the change in the timeline)")
async def change_subject(body: SubjectBody, actor: AgentActor, rpc: Rpc,
                         conversation_id: str = ConversationId) -> AgentConversationReply:
    return await rpc.call(operations.conversations.agent_change_subject, AgentChangeSubject(
        actor=actor, conversation_id=conversation_id, subject=body.subject))


@router.post("/api/v1/agent/conversations/{conversation_id}/assign", response_model=AgentConversationReply)
async def assign(body: AssignBody, actor: AgentActor, rpc: Rpc,
                 conversation_id: str = ConversationId) -> AgentConversationReply:
    return await rpc.call(operations.conversations.agent_assign, AgentAssign(
        actor=actor, conversation_id=conversation_id, assignee_id=body.assignee_id))


@router.post("/api/v1/agent/conversations/{conversation_id}/attributes", response_model=AgentConversationReply,
             summary="Set custom attributes (shown to customers only where the portal's admin chose them)")
async def set_attributes(body: AttributesBody, actor: AgentActor, rpc: Rpc,
                         conversation_id: str = ConversationId) -> AgentConversationReply:
    return await rpc.call(operations.conversations.agent_set_attributes, AgentSetAttributes(
        actor=actor, conversation_id=conversation_id, values=body.values))


@router.post("/api/v1/agent/conversations/{conversation_id}/messages/{message_id}/redact",
             response_model=AgentConversationReply,
             summary="Redact a message: its text and files are erased from storage, not only hidden")
async def redact(request: Request, conversation_id: str = ConversationId,
                 message_id: str = Path(min_length=1, max_length=26)) -> AgentConversationReply:
    actor, rpc = await agent(request)
    return await rpc.call(operations.conversations.agent_redact, AgentRedact(
        actor=actor, conversation_id=conversation_id, message_id=message_id), timeout=15)


@router.get("/api/v1/agent/attachments/{attachment_id}", response_class=StreamingResponse)
async def download(request: Request,
                   attachment_id: str = Path(min_length=1, max_length=26)) -> StreamingResponse:
    actor, rpc = await agent(request)
    file = await rpc.call(operations.conversations.attachment_file,
                          GetAttachment(actor=actor, attachment_id=attachment_id))
    return await send_file(request, file)
