"""My Conversations in the browser: `GET /portals/{portal}/conversations` (the list, with filters, search
and paging), `GET /portals/{portal}/conversations/{id}` (one conversation: timeline, facts, files, the
composer) and `POST …/{id}/reopen`.

Each page calls the operation the JSON API calls (`services/gateway/routes_conversations.py`); what
reopening a closed conversation does is the service's answer (`ConversationDetail.reopen`), never the
page's. Writing (the composer, a new conversation) is in `routes_compose.py`.
"""

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from contracts import operations
from contracts.conversations import (
    ConversationDetail,
    GetConversation,
    ListConversations,
    ReopenConversation,
    Status,
    Viewer,
)
from contracts.errors import ErrorCode, ServiceError
from contracts.events import CHANNELS
from services.gateway.web.i18n import DEFAULT_LANGUAGE, choose_language
from services.gateway.web.pages import page_portal, portal_page, see_other
from services.gateway.web.portal import Portal, Visitor
from services.gateway.web.rendering import gettext
from services.gateway.web.words import DETAILED, WORDS, _, say

router = APIRouter(include_in_schema=False)

Slug = Path(min_length=1, max_length=100)
ConversationId = Path(min_length=1, max_length=26)
PAGE_SIZE = 20

CHANNEL_NAMES = {
    "portal": _("Help centre"), "email": _("E-mail"), "chat": _("Chat"), "form": _("Web form"),
    "messenger": _("Messenger"), "instagram": _("Instagram"), "sms": _("SMS"), "twitter": _("Twitter"),
    "whatsapp": _("WhatsApp"),
}
STATUS_NAMES = {"open": _("Open"), "closed": _("Closed")}


def customer_of(visitor: Visitor) -> Viewer:
    """The conversations service's viewer for this visitor: signed out is `unauthorized` (a GET then goes
    to the login page and back), staff `forbidden`, as `require_viewer` answers the JSON API."""
    viewer = visitor.viewer()
    if viewer is None:
        if visitor.kind == "staff":
            raise ServiceError(ErrorCode.forbidden, "Staff work conversations in the agent console.")
        raise ServiceError(ErrorCode.unauthorized, "Not signed in.")
    return viewer


def names(request: Request) -> dict[str, dict[str, str]]:
    """Channel and status names in the page's language."""
    return {"channels": {k: gettext(request, v) for k, v in CHANNEL_NAMES.items()},
            "statuses": {k: gettext(request, v) for k, v in STATUS_NAMES.items()}}


@router.get("/portals/{portal}/conversations", response_class=HTMLResponse)
async def my_conversations(request: Request, portal: str = Slug,
                           status: str = Query(default="", max_length=20),
                           channel: str = Query(default="", max_length=20),
                           q: str = Query(default="", max_length=200),
                           cursor: str | None = Query(default=None, max_length=200)) -> HTMLResponse:
    """The customer's conversations, newest activity first; a filter value that is not one is ignored."""
    site, visitor = await page_portal(request, portal)
    viewer = customer_of(visitor)
    filters = {"status": status if status in Status.__members__ else "",
               "channel": channel if channel in CHANNELS else "", "q": q.strip()}
    try:
        page = await request.app.state.rpc.call(operations.conversations.list_conversations, ListConversations(
            viewer=viewer, status=filters["status"] or None, channel=filters["channel"] or None,
            q=filters["q"] or None, cursor=cursor, limit=PAGE_SIZE))
    except ServiceError as error:
        if error.code is not ErrorCode.my_conversations_disabled:
            raise
        return portal_page(request, site, visitor, "portal/conversations_off.html", view="my_conversations",
                           section="conversations", status=error.status, message=say(request, error))
    kept = {k: v for k, v in filters.items() if v}
    return portal_page(request, site, visitor, "portal/conversations.html", view="my_conversations",
                       section="conversations", page=page, filters=filters, filtered=bool(kept),
                       query=kept, first_page=cursor is not None, **names(request))


@dataclass
class Composer:
    """What the composer shows: the text as typed and, after a refusal, the words by field (`subject`,
    `body`, `files`, `form`)."""

    body: str = ""
    subject: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    refused: bool = False


def new_key() -> str:
    """An idempotency key for one rendering of a form: a second click on Send creates nothing new."""
    return secrets.token_urlsafe(18)


def conversation_page(request: Request, site: Portal, visitor: Visitor, conversation: ConversationDetail, *,
                      composer: Composer | None = None, notice: str = "", status: int = 200) -> HTMLResponse:
    """The conversation page; after a refused message, the composer with the words and the text kept."""
    viewer = visitor.viewer()
    return portal_page(request, site, visitor, "portal/conversation.html", view="conversation_detail",
                       section="conversations", status=status, conversation=conversation,
                       me=viewer.user_id if viewer else "", composer=composer or Composer(), notice=notice,
                       key=new_key(),
                       attributes=[(a.display_name, shown_value(a.attribute, a.value)) for a in conversation.attributes],
                       **names(request), **composer_context(request, site))


def shown_value(attribute: str, value: Any) -> Any:
    """An attribute's value as the page shows it: times as datetimes (formatted by the template)."""
    if attribute in ("updated_at", "closed_at") and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


# Refusals the composer's script may get from the JSON API, shown in the page's words.
COMPOSER_ERRORS = (ErrorCode.message_empty, ErrorCode.message_too_long, ErrorCode.too_many_attachments,
                   ErrorCode.attachment_too_large, ErrorCode.attachment_empty, ErrorCode.attachment_type_not_allowed,
                   ErrorCode.attachment_malformed, ErrorCode.payload_too_large, ErrorCode.conversation_closed,
                   ErrorCode.unauthorized, ErrorCode.session_expired, ErrorCode.rate_limited,
                   ErrorCode.my_conversations_disabled, ErrorCode.service_unavailable, ErrorCode.internal_error)


def composer_context(request: Request, site: Portal) -> dict[str, Any]:
    """The portal's limits for the composer (shown as hints, and as `data-` attributes for its script)
    and the words of the refusals the script may meet, in the page's language."""
    features = site.features
    types = set(features.file_types)
    extensions = sorted(types | {"jpeg"} if "jpg" in types else types)
    # The API states details (which file, how many characters) in English: other languages show the
    # sentence alone, and for a refusal not listed here a general one ("other") instead of the API's.
    english = choose_language(request) == DEFAULT_LANGUAGE
    words = {code.value: {"text": gettext(request, WORDS[code]), "detail": english and code in DETAILED}
             for code in COMPOSER_ERRORS}
    words["other"] = {"text": "" if english else gettext(request, WORDS[ErrorCode.invalid_request]), "detail": False}
    return {"limits": {"max_chars": features.max_body_chars, "max_files": features.max_files,
                       "max_bytes": features.max_file_bytes, "extensions": extensions,
                       "types": ", ".join(e.upper() for e in sorted(types))},
            "composer_words": json.dumps(words, ensure_ascii=False)}


@router.get("/portals/{portal}/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation(request: Request, portal: str = Slug, conversation_id: str = ConversationId) -> HTMLResponse:
    site, visitor = await page_portal(request, portal)
    reply = await request.app.state.rpc.call(operations.conversations.get_conversation, GetConversation(
        viewer=customer_of(visitor), conversation_id=conversation_id))
    return conversation_page(request, site, visitor, reply.conversation)


@router.post("/portals/{portal}/conversations/{conversation_id}/reopen", response_class=Response)
async def reopen(request: Request, portal: str = Slug, conversation_id: str = ConversationId) -> Response:
    """Reopen, or under the `new_conversation` policy start the follow-up: either way, on to the
    conversation the service answers with. A refusal shows the conversation with the words."""
    site, visitor = await page_portal(request, portal)
    viewer = customer_of(visitor)
    rpc = request.app.state.rpc
    try:
        reply = await rpc.call(operations.conversations.reopen_conversation, ReopenConversation(
            viewer=viewer, conversation_id=conversation_id))
    except ServiceError as error:
        if error.code not in (ErrorCode.reopen_disabled, ErrorCode.reopen_window_passed):
            raise
        current = await rpc.call(operations.conversations.get_conversation,
                                 GetConversation(viewer=viewer, conversation_id=conversation_id))
        return conversation_page(request, site, visitor, current.conversation, notice=say(request, error),
                                 status=error.status)
    return see_other(f"/portals/{site.slug}/conversations/{reply.conversation.id}")
