"""Writing from the portal's pages: `GET|POST /portals/{portal}/conversations/new` (subject, message,
files) and `POST /portals/{portal}/conversations/{id}/messages` (the composer), each a plain multipart
form answered with a 303 to the conversation.

The form is read by `services.gateway.uploads.read_message`, as the JSON API reads its multipart bodies,
so files get the same checks and the same Object Store handling (deleted again when the message is
refused). A refusal shows the form again with the words next to the field, the error's status, and
the text as typed; files cannot be put back into a file field, and the page says so.
"""

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts import operations
from contracts.conversations import GetConversation, PostMessage, StartConversation
from contracts.errors import ErrorCode, ServiceError
from services.gateway.uploads import Incoming, owned_by_reply, read_message
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


# What sending a form's message answers: the response, and whether the files are now a new message's.
Answer = tuple[Response, bool]


async def send_form(request: Request, model: type[BaseModel], send: Callable[[Incoming], Awaitable[Answer]],
                    refused: Callable[[dict[str, str], dict[str, str], int], Awaitable[Response]], *, org_id: str,
                    portal: str | None = None, conversation_id: str | None = None) -> Response:
    """A composer's form, posted: `model`'s fields and the files are read as the JSON API reads them
    (`read_message`; `org_id`, `portal`, `conversation_id` choose the limits), then `send(incoming)` answers
    with `(response, owned)`; files not `owned` by a new message are deleted again. A refusal the form shows
    (`refusal`) is answered by `refused(typed, errors, status)`: the text fields as typed, the words by field,
    the error's HTTP status; any other `ServiceError` is raised."""
    typed: dict[str, str] = {}
    try:
        incoming = await read_message(request, request.app.state.rpc, model, org_id=org_id, portal=portal,
                                      conversation_id=conversation_id, typed=typed)
        async with owned_by_reply(request, incoming) as kept:
            answer, kept[0] = await send(incoming)
    except ServiceError as error:
        errors = refusal(request, error)
        if errors is None:
            raise
        return await refused(typed, errors, error.status)
    return answer


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
    return await send_from_portal(request, portal)


@router.post("/portals/{portal}/conversations/{conversation_id}/messages", response_class=Response)
async def write_message(request: Request, portal: str = Slug, conversation_id: str = ConversationId) -> Response:
    """The composer: the message is posted, then the conversation again, at the new message."""
    return await send_from_portal(request, portal, conversation_id)


async def send_from_portal(request: Request, portal: str, conversation_id: str | None = None) -> Response:
    """A new conversation (no `conversation_id`) or a message in one, then a 303 to it; a refusal shows the
    form again (the new-conversation page, or the conversation at its composer) with the text as typed."""
    site, visitor = await page_portal(request, portal)
    viewer = customer_of(visitor)
    rpc = request.app.state.rpc

    async def send(incoming: Incoming) -> Answer:
        fields = incoming.fields
        key = fields["idempotency_key"] or None
        if conversation_id is None:
            started = await rpc.call(operations.conversations.start_conversation, StartConversation(
                viewer=viewer, subject=fields["subject"], body=fields["body"], attachments=incoming.attachments,
                idempotency_key=key))
            return see_other(f"/portals/{site.slug}/conversations/{started.conversation.id}"), not started.replayed
        posted = await rpc.call(operations.conversations.post_message, PostMessage(
            viewer=viewer, conversation_id=conversation_id, body=fields["body"], attachments=incoming.attachments,
            idempotency_key=key))
        at = f"/portals/{site.slug}/conversations/{posted.conversation_id}#message-{posted.message.id}"
        return see_other(at), not posted.replayed

    async def refused(typed: dict[str, str], errors: dict[str, str], status: int) -> Response:
        composer = Composer(body=typed.get("body", ""), subject=typed.get("subject", ""), errors=errors, refused=True)
        if conversation_id is None:
            return new_conversation_page(request, site, visitor, composer, status=status)
        current = await rpc.call(operations.conversations.get_conversation,
                                 GetConversation(viewer=viewer, conversation_id=conversation_id))
        return conversation_page(request, site, visitor, current.conversation, composer=composer, status=status)

    return await send_form(request, NewConversationForm if conversation_id is None else MessageForm, send, refused,
                           org_id=viewer.org_id, portal=site.slug)
