"""The agent workspace's live-update stream: `GET /api/v1/agent/events`, server-sent events for a signed-in
agent or admin, about the conversations of their organisation.

As the portal's stream (`services.gateway.web.routes_events`, whose shape this keeps): each `conversation`
event says only which conversation changed (`{"conversation_id", "kind", "version"}`, `id:` the event's
stream sequence; kinds as the customers' plus `note`), and the page then reads it through the agent
operations. It opens with `ready` (its `id:` is where it starts), resumes with `Last-Event-ID` or
`?last_event_id=`, sends `resync` when the missed notices are gone, and ends when the session ends or
the role no longer works conversations (read again before each notice and every `SESSION_CHECK_SECONDS`).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from contracts.errors import ErrorCode, ServiceError
from contracts.roles import Permission
from services.gateway.auth import read_session
from services.gateway.live_staff import StaffFeed
from services.gateway.web.console.staff import Staff, require_staff
from services.gateway.web.routes_events import PING_SECONDS, RETRY_MS, SEND_TIMEOUT_SECONDS, SESSION_CHECK_SECONDS

router = APIRouter(tags=["agent"])

STREAM_DOC = {
    200: {"description": "An endless `text/event-stream`: first `event: ready` (`id:` where it starts), then "
                         "`event: conversation`, `id: <stream sequence>`, "
                         "`data: {\"conversation_id\": ..., \"kind\": \"message\"|\"note\"|\"created\"|\"status\"|"
                         "\"redacted\"|\"reporter\", \"version\": <conversation version>}` for every conversation "
                         "of the organisation; `event: resync` when the missed notices can no longer be replayed.",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    401: {"description": "`unauthorized`: no staff session (the stream needs the session cookie)."},
    403: {"description": "`forbidden`: a customer's session, or a role that does not work conversations."},
    406: {"description": "`not_acceptable`: the request did not ask for `text/event-stream`."},
}


@router.get("/api/v1/agent/events", response_class=EventSourceResponse, responses=STREAM_DOC,
            summary="Live updates: which of the organisation's conversations changed (server-sent events)")
async def agent_events(
    request: Request,
    last_event_id: int | None = Query(default=None, ge=0, le=2**62, description=(
        "Resume after this event id, as the `Last-Event-ID` header does (browsers send the header).")),
) -> EventSourceResponse:
    staff = await require_staff(request, Permission.work_conversations)
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise ServiceError(ErrorCode.not_acceptable, "This is a stream of server-sent events: send "
                                                     "`Accept: text/event-stream` (EventSource does).")
    header = request.headers.get("last-event-id", "")
    # A header that is not an id this stream gave out is ignored, as the portal's stream does.
    resume = int(header) if header.isascii() and header.isdigit() and len(header) <= 18 else last_event_id
    return EventSourceResponse(_notices(request, request.app.state.staff_live, staff, resume), ping=PING_SECONDS,
                               send_timeout=SEND_TIMEOUT_SECONDS)


async def _still_staff(request: Request, staff: Staff) -> bool:
    """Whether the stream's session is still live, and its role still works conversations."""
    try:
        found = await read_session(request, touch=False)
    except ServiceError:
        return True  # NATS is away for a moment: the session is not known to have ended
    return (found is not None and found[0] == staff.token and found[1].kind == "staff"
            and Staff(record=found[1], token=found[0]).can(Permission.work_conversations))


async def _notices(request: Request, feed: StaffFeed, staff: Staff,
                   resume: int | None) -> AsyncIterator[ServerSentEvent]:
    await feed.feed.ready.wait()  # only while the gateway starts
    listener, resync = feed.join(staff.record.org_id, resume)
    try:
        yield ServerSentEvent(data="{}", event="ready", id=str(listener.after), retry=RETRY_MS)
        if resync:
            yield ServerSentEvent(data="{}", event="resync")
        next_check = time.monotonic() + SESSION_CHECK_SECONDS
        while True:
            try:
                notice = await asyncio.wait_for(listener.queue.get(), max(0.0, next_check - time.monotonic()))
            except TimeoutError:
                if not await _still_staff(request, staff):
                    return
                next_check = time.monotonic() + SESSION_CHECK_SECONDS
                continue
            if notice is None or not await _still_staff(request, staff):
                return  # too slow (the browser resumes), the gateway stops, or signed out
            yield ServerSentEvent(data=json.dumps(notice.public()), event="conversation", id=str(notice.seq))
    finally:
        feed.leave(listener)
