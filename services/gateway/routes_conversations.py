"""My Conversations: the signed-in customer's conversations, messages, files and reopen."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import operations
from contracts.conversations import (
    AttachmentFile,
    ConversationPage,
    ConversationReply,
    GetAttachment,
    GetConversation,
    ListConversations,
    PostedMessage,
    PostMessage,
    ReopenConversation,
    StartConversation,
    Status,
)
from contracts.errors import ErrorCode, ServiceError
from contracts.events import Channel
from services.gateway.auth import customer
from services.gateway.deps import PortalSlug
from services.gateway.uploads import message_request_body, owned_by_reply, read_message
from services.runtime.objects import ATTACHMENTS_BUCKET, read_object

router = APIRouter(tags=["my conversations"])

JSON = "application/json"  # a reply answered as the service serialised it (`RpcClient.call_json`)
ConversationId = Path(description="Conversation id", min_length=1, max_length=26)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                               description="A retry with the same key creates nothing new.")]

class MessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=1_000_000, description="The text; at most the portal's limit (10,240 characters).")
    reopen: bool = Field(default=False, description="Reopen the conversation if it is closed.")


class NewConversationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(max_length=2000, examples=["My invoice is wrong"])
    body: str = Field(max_length=1_000_000, examples=["Hello, the amount on invoice 42 ..."])


def _replayed(response: Response, replayed: bool) -> None:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"


@router.get("/api/v1/portals/{portal}/conversations", response_model=ConversationPage,
            summary="My Conversations: open and closed, every channel, newest activity first")
async def list_conversations(request: Request, portal: str = PortalSlug,
                             status: Status | None = None, channel: Channel | None = None,
                             q: str | None = Query(default=None, max_length=200, description="Text to look for"),
                             cursor: str | None = Query(default=None, max_length=200),
                             limit: int = Query(default=25, ge=1, le=100)) -> Response:
    viewer, rpc = await customer(request, portal)
    return Response(await rpc.call_json(operations.conversations.list_conversations, ListConversations(
        viewer=viewer, status=status, channel=channel, q=q, cursor=cursor, limit=limit)), media_type=JSON)


@router.post("/api/v1/portals/{portal}/conversations", status_code=201, response_model=ConversationReply,
             summary="Start a conversation (portal channel); JSON or multipart with `files`",
             openapi_extra=message_request_body(NewConversationBody))
async def start_conversation(request: Request, response: Response,
                             idempotency_key: IdempotencyKey = None, portal: str = PortalSlug) -> ConversationReply:
    viewer, rpc = await customer(request, portal)
    incoming = await read_message(request, rpc, NewConversationBody, org_id=viewer.org_id, portal=portal)
    async with owned_by_reply(request, incoming) as kept:
        reply = await rpc.call(operations.conversations.start_conversation, StartConversation(
            viewer=viewer, subject=incoming.fields["subject"], body=incoming.fields["body"],
            attachments=incoming.attachments, idempotency_key=idempotency_key))
        kept[0] = not reply.replayed
    _replayed(response, reply.replayed)
    return reply


@router.get("/api/v1/portals/{portal}/conversations/{conversation_id}", response_model=ConversationReply,
            summary="A conversation as the agent timeline shows it, without internal notes")
async def get_conversation(request: Request, portal: str = PortalSlug,
                           conversation_id: str = ConversationId) -> Response:
    viewer, rpc = await customer(request, portal)
    return Response(await rpc.call_json(operations.conversations.get_conversation,
                                        GetConversation(viewer=viewer, conversation_id=conversation_id)), media_type=JSON)


@router.post("/api/v1/portals/{portal}/conversations/{conversation_id}/messages", status_code=201,
             response_model=PostedMessage, openapi_extra=message_request_body(MessageBody),
             summary="Write in a conversation: JSON `{body}`, or multipart with `body` and repeated `files`")
async def post_message(request: Request, response: Response,
                       idempotency_key: IdempotencyKey = None, portal: str = PortalSlug,
                       conversation_id: str = ConversationId) -> PostedMessage:
    viewer, rpc = await customer(request, portal)
    incoming = await read_message(request, rpc, MessageBody, org_id=viewer.org_id, portal=portal)
    async with owned_by_reply(request, incoming) as kept:
        posted = await rpc.call(operations.conversations.post_message, PostMessage(
            viewer=viewer, conversation_id=conversation_id, body=incoming.fields["body"],
            reopen=incoming.fields["reopen"], attachments=incoming.attachments, idempotency_key=idempotency_key))
        kept[0] = not posted.replayed
    _replayed(response, posted.replayed)
    return posted


@router.post("/api/v1/portals/{portal}/conversations/{conversation_id}/reopen", response_model=ConversationReply,
             summary="Reopen a closed conversation (or, by the portal's policy, continue it in a new one)")
async def reopen_conversation(request: Request, response: Response,
                              idempotency_key: IdempotencyKey = None, portal: str = PortalSlug,
                              conversation_id: str = ConversationId) -> ConversationReply:
    viewer, rpc = await customer(request, portal)
    reply = await rpc.call(operations.conversations.reopen_conversation, ReopenConversation(
        viewer=viewer, conversation_id=conversation_id, idempotency_key=idempotency_key))
    _replayed(response, reply.replayed)
    return reply


async def send_file(request: Request, file: AttachmentFile) -> StreamingResponse:
    js = request.app.state.broker.config.connection_state.stream
    try:
        size, chunks = await read_object(js, ATTACHMENTS_BUCKET, file.id)
    except Exception as exc:
        raise ServiceError(ErrorCode.not_found, "The file is no longer stored.") from exc
    ascii_name = file.filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return StreamingResponse(chunks, media_type=file.content_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file.filename)}",
        "Content-Length": str(size), "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
        "Content-Security-Policy": "sandbox", "ETag": f'"{file.sha256}"'})


@router.get("/api/v1/portals/{portal}/attachments/{attachment_id}", response_class=StreamingResponse,
            summary="Download a file, for those who may see its conversation")
async def download(request: Request, portal: str = PortalSlug,
                   attachment_id: str = Path(min_length=1, max_length=26)) -> StreamingResponse:
    viewer, rpc = await customer(request, portal)
    file = await rpc.call(operations.conversations.attachment_file,
                          GetAttachment(viewer=viewer, attachment_id=attachment_id))
    return await send_file(request, file)
