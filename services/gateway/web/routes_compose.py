"""Writing from the portal's pages: `GET|POST /portals/{portal}/conversations/new` (subject, message,
files) and `POST /portals/{portal}/conversations/{id}/messages` (the composer), each a plain multipart
form answered with a 303 to the conversation.

The form is read by `services.gateway.uploads.read_message`, as the JSON API reads its multipart bodies,
so files get the same checks and the same Object Store handling (deleted again when the message is
refused). A refusal shows the form again with the words next to the field, the error's status, and
the text as typed; files cannot be put back into a file field, and the page says so.
"""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts import operations
from contracts.conversations import GetConversation, PostMessage, StartConversation
from contracts.errors import ErrorCode, ServiceError
from services.gateway.uploads import owned_by_reply, read_message
from services.gateway.web.pages import page_portal, portal_page, see_other
from services.gateway.web.portal import Portal, Visitor
from services.gateway.web.rendering import gettext
from services.gateway.web.routes_conversations import (
    Composer,
    ConversationId,
    Slug,
    composer_context,
    conversation_page,
    customer_of,
    new_key,
)
from services.gateway.web.words import _, say

router = APIRouter(include_in_schema=False)


class MessageForm(BaseModel):
    """The composer's fields (and `files`, read by `read_message`)."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=1_000_000)
    idempotency_key: str = Field(default="", max_length=200, description="Makes a second click send nothing new.")


class NewConversationForm(MessageForm):
    subject: str = Field(default="", max_length=2000)


# Which field a refusal belongs next to; anything else is said at the top of the form.
FIELD_OF = {
    ErrorCode.message_empty: "body", ErrorCode.message_too_long: "body",
    ErrorCode.too_many_attachments: "files", ErrorCode.attachment_too_large: "files",
    ErrorCode.attachment_empty: "files", ErrorCode.attachment_type_not_allowed: "files",
    ErrorCode.attachment_malformed: "files", ErrorCode.payload_too_large: "files",
    ErrorCode.conversation_closed: "form", ErrorCode.rate_limited: "form", ErrorCode.invalid_request: "form",
}
SUBJECT_WORDS = _("Please write a subject of at most 200 characters.")
CONTROL_WORDS = _("Your message contains characters we cannot store. Please remove them and send it again.")


def refusal(request: Request, error: ServiceError) -> dict[str, str] | None:
    """{field: words} for a refusal the form shows, or None for one that is a page of its own."""
    field = FIELD_OF.get(error.code)
    if field is None:
        return None
    if error.code is ErrorCode.invalid_request:
        # The service names the field in its message: "subject: must not be empty.", "… control characters."
        if error.message.lower().startswith(("subject", "body.subject")):
            return {"subject": gettext(request, SUBJECT_WORDS)}
        if "control characters" in error.message:
            return {"body": gettext(request, CONTROL_WORDS)}
    return {field: say(request, error)}


def new_conversation_page(request: Request, site: Portal, visitor: Visitor, composer: Composer, *,
                          status: int = 200) -> HTMLResponse:
    return portal_page(request, site, visitor, "portal/conversation_new.html", view="conversation_detail",
                       section="new", status=status, composer=composer, key=new_key(),
                       **composer_context(request, site))


@router.get("/portals/{portal}/conversations/new", response_class=HTMLResponse)
async def new_conversation(request: Request, portal: str = Slug) -> HTMLResponse:
    """The form to start a conversation; signed out, the login page first (and back here)."""
    site, visitor = await page_portal(request, portal)
    customer_of(visitor)
    if not site.features.my_conversations_enabled:  # the service would refuse what this form sends
        raise ServiceError(ErrorCode.my_conversations_disabled, "My Conversations is turned off.")
    return new_conversation_page(request, site, visitor, Composer())


@router.post("/portals/{portal}/conversations/new", response_class=Response)
async def start_conversation(request: Request, portal: str = Slug) -> Response:
    site, visitor = await page_portal(request, portal)
    viewer = customer_of(visitor)
    rpc = request.app.state.rpc
    typed: dict[str, str] = {}
    try:
        incoming = await read_message(request, rpc, NewConversationForm, org_id=viewer.org_id, portal=site.slug,
                                      typed=typed)
        async with owned_by_reply(request, incoming) as kept:
            reply = await rpc.call(operations.conversations.start_conversation, StartConversation(
                viewer=viewer, subject=incoming.fields["subject"], body=incoming.fields["body"],
                attachments=incoming.attachments, idempotency_key=incoming.fields["idempotency_key"] or None))
            kept[0] = not reply.replayed
    except ServiceError as error:
        errors = refusal(request, error)
        if errors is None:
            raise
        composer = Composer(body=typed.get("body", ""), subject=typed.get("subject", ""), errors=errors, refused=True)
        return new_conversation_page(request, site, visitor, composer, status=error.status)
    return see_other(f"/portals/{site.slug}/conversations/{reply.conversation.id}")


@router.post("/portals/{portal}/conversations/{conversation_id}/messages", response_class=Response)
async def write_message(request: Request, portal: str = Slug, conversation_id: str = ConversationId) -> Response:
    """The composer: the message is posted, then the conversation again, at the new message."""
    site, visitor = await page_portal(request, portal)
    viewer = customer_of(visitor)
    rpc = request.app.state.rpc
    typed: dict[str, str] = {}
    try:
        incoming = await read_message(request, rpc, MessageForm, org_id=viewer.org_id, portal=site.slug,
                                      typed=typed)
        async with owned_by_reply(request, incoming) as kept:
            posted = await rpc.call(operations.conversations.post_message, PostMessage(
                viewer=viewer, conversation_id=conversation_id, body=incoming.fields["body"],
                attachments=incoming.attachments, idempotency_key=incoming.fields["idempotency_key"] or None))
            kept[0] = not posted.replayed
    except ServiceError as error:
        errors = refusal(request, error)
        if errors is None:
            raise
        current = await rpc.call(operations.conversations.get_conversation,
                                 GetConversation(viewer=viewer, conversation_id=conversation_id))
        composer = Composer(body=typed.get("body", ""), errors=errors, refused=True)
        return conversation_page(request, site, visitor, current.conversation, composer=composer,
                                 status=error.status)
    return see_other(f"/portals/{site.slug}/conversations/{posted.conversation_id}#message-{posted.message.id}")
