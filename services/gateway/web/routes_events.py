"""The live-update stream of a portal: `GET /api/v1/portals/{portal}/events`, server-sent events for the
customer (or anonymous browser) signed in to that portal.

Each `conversation` event says only which conversation changed (`{"conversation_id", "kind",
"version"}`, `id:` the event's stream sequence); the page then reads it through the normal authorised
operation, so the stream never carries what the customer may not see. What a notice is, who gets it,
and how a dropped connection resumes (`Last-Event-ID`, or `?last_event_id=`) is in
`services.gateway.live`. The stream opens with a `ready` event (`data: {}`) that carries a `retry:`
hint and, as its `id:`, the position it starts from; it keeps proxies from closing it with a comment
every `PING_SECONDS`, and ends when the session ends: the session is read again before each notice
and every `SESSION_CHECK_SECONDS` (without counting as use).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator

import nats.errors
from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from contracts import operations
from contracts.conversations import ListConversations, Viewer
from contracts.errors import ErrorCode, ServiceError
from contracts.sessions import session_key
from services.gateway.auth import CustomerViewer, read_session
from services.gateway.deps import PortalSlug, Rpc
from services.gateway.live import LiveFeed
from services.runtime.logging import get_logger
from services.runtime.rpc import RpcClient

log = get_logger("portico.gateway.live")

router = APIRouter(tags=["my conversations"])

SESSION_CHECK_SECONDS = 30.0
PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 10.0  # a browser that takes no data for this long is dropped (it reconnects)
RETRY_MS = 3000
BROWSER_PAGES = 5  # pages of 100 conversations read for a viewer who sees only their browser's

STREAM_DOC = {
    200: {"description": "An endless `text/event-stream`: first `event: ready` (`id:` where it starts), then "
                         "`event: conversation`, `id: <stream sequence>`, "
                         "`data: {\"conversation_id\": ..., \"kind\": \"message\"|\"created\"|\"status\"|"
                         "\"redacted\"|\"reporter\", \"version\": <conversation version>}`; `event: resync` "
                         "when the missed notices can no longer be replayed (read the page afresh).",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    406: {"description": "`not_acceptable`: the request did not ask for `text/event-stream`."},
}


@router.get("/api/v1/portals/{portal}/events", include_in_schema=True, response_class=EventSourceResponse,
            responses=STREAM_DOC, summary="Live updates: which of my conversations changed (server-sent events)")
async def portal_events(
    request: Request, viewer: CustomerViewer, rpc: Rpc, portal: str = PortalSlug,
    last_event_id: int | None = Query(default=None, ge=0, le=2**62, description=(
        "Resume after this event id, as the `Last-Event-ID` header does (browsers send the header).")),
) -> EventSourceResponse:
    """The viewer's notices, from now on or after `Last-Event-ID`. Refused before the stream opens:
    `unauthorized` (401) signed out, `forbidden` (403) staff, `wrong_portal` (403) another portal's
    session, `not_acceptable` (406) a request that does not accept `text/event-stream`."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise ServiceError(ErrorCode.not_acceptable, "This is a stream of server-sent events: send "
                                                     "`Accept: text/event-stream` (EventSource does).")
    resume = _header_id(request.headers.get("last-event-id"))
    resume = resume if resume is not None else last_event_id
    conversations = await browser_conversations(rpc, viewer) if viewer.sees_only_own_browser else None
    feed: LiveFeed = request.app.state.live
    return EventSourceResponse(_notices(request, rpc, feed, viewer, resume, conversations), ping=PING_SECONDS,
                               send_timeout=SEND_TIMEOUT_SECONDS)


def _header_id(value: str | None) -> int | None:
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None  # not an id this stream gave out: start from now
    return int(value)


async def browser_conversations(rpc: RpcClient, viewer: Viewer) -> set[str]:
    """Ids of the conversations an anonymous or unverified browser sees (as its My Conversations list)."""
    seen: set[str] = set()
    cursor = None
    try:
        for _ in range(BROWSER_PAGES):
            page = await rpc.call(operations.conversations.list_conversations,
                                  ListConversations(viewer=viewer, cursor=cursor, limit=100))
            seen.update(conversation.id for conversation in page.conversations)
            cursor = page.next_cursor
            if cursor is None:
                break
    except ServiceError as error:
        if error.code is not ErrorCode.my_conversations_disabled:
            raise
    return seen


async def _signed_in(request: Request, viewer: Viewer) -> bool:
    """Whether the stream's session is still the live session of this viewer."""
    try:
        found = await read_session(request, touch=False)
    except (ServiceError, nats.errors.Error, TimeoutError):
        return True  # NATS is away for a moment: the session is not known to have ended
    return found is not None and session_key(found[0]) == viewer.session_key and found[1].user_id == viewer.user_id


async def _notices(request: Request, rpc: RpcClient, feed: LiveFeed, viewer: Viewer, resume: int | None,
                   conversations: set[str] | None) -> AsyncIterator[ServerSentEvent]:
    await feed.ready.wait()  # only while the gateway starts
    listener, resync = feed.join(viewer.org_id, viewer.user_id, resume, conversations)
    try:
        # The position first: a browser that drops before any notice resumes from here.
        yield ServerSentEvent(data="{}", event="ready", id=str(listener.after), retry=RETRY_MS)
        if resync:
            yield ServerSentEvent(data="{}", event="resync")
        sent = listener.after
        next_check = time.monotonic() + SESSION_CHECK_SECONDS
        while True:
            try:
                notice = await asyncio.wait_for(listener.queue.get(), max(0.0, next_check - time.monotonic()))
            except TimeoutError:
                if not await _signed_in(request, viewer):
                    return
                if listener.held:
                    try:
                        listener.see(await browser_conversations(rpc, viewer))
                    except (ServiceError, nats.errors.Error, TimeoutError):
                        pass  # read again at the next check
                next_check = time.monotonic() + SESSION_CHECK_SECONDS
                continue
            if notice is None or not await _signed_in(request, viewer):
                return  # too slow (the browser resumes), the gateway stops, or signed out
            # A held notice released late keeps the browser's position where it is.
            yield ServerSentEvent(data=json.dumps(notice.public()), event="conversation",
                                  id=str(notice.seq) if notice.seq > sent else None)
            sent = max(sent, notice.seq)
    finally:
        feed.leave(listener)
