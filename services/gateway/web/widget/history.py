"""What a browser wrote before it signed in stays with it: a sign-in that replaces an anonymous or
e-mail-unverified session answers only once the conversations that session created are visible to the
new one.

auth links the identities with the `IdentityLinked` event; the conversations service applies it when
the event reaches it (after `UserRegistered` for an address that had no account). Until then the new
session cannot see what the browser created, and the chat widget, which reads its conversation again
right after `sso.login(token)`, would show a "not found". So the sign-in route reads, before signing
in, which conversations the earlier session sees, and after it waits (at most `LINK_WAIT_SECONDS`,
reading the new session's list with a growing pause) until they show in the new session's list. A
service that is away for a moment is waited for as well; past the limit the sign-in answers anyway
(the widget then picks the conversation up from its live stream's `reporter` notice).
"""

import asyncio
import time

import nats.js.errors
from starlette.requests import Request

from contracts import operations
from contracts.conversations import ListConversations, Viewer
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import SessionOpened
from contracts.sessions import SessionRecord, session_key
from services.gateway.web.routes_events import browser_conversations
from services.runtime.logging import get_logger
from services.runtime.rpc import RpcClient

log = get_logger("portico.gateway.widget")

LINK_WAIT_SECONDS = 15.0
FIRST_PAUSE, LONGEST_PAUSE = 0.05, 0.5
# While waiting, these mean "not yet": the service restarts or is slow for a moment.
PASSING = frozenset({ErrorCode.service_unavailable, ErrorCode.service_timeout})


def _viewer(token: str, record: SessionRecord) -> Viewer:
    return Viewer(user_id=record.user_id, org_id=record.org_id, portal=record.portal or "",
                  kind=record.kind, method=record.method, session_key=session_key(token),  # type: ignore[arg-type]
                  email=record.email, display_name=record.display_name)


async def created_by(request: Request, rpc: RpcClient, portal: str, token: str | None) -> set[str]:
    """Ids of the conversations the browser's session `token` created, when it is an anonymous or
    unverified session of `portal` (what a sign-in will link); empty otherwise or when unreadable."""
    if not token or len(token) > 200:
        return set()
    try:
        entry = await request.app.state.sessions().get(session_key(token))
    except (nats.js.errors.KeyNotFoundError, ServiceError):
        return set()
    record = SessionRecord.model_validate_json(entry.value or b"{}")
    if record.portal != portal or record.method not in ("anonymous", "email_unverified") or not record.is_live():
        return set()
    try:
        return await browser_conversations(rpc, _viewer(token, record))
    except ServiceError:
        return set()  # nothing to wait for that can be known now; the sign-in goes ahead


async def wait_until_linked(rpc: RpcClient, opened: SessionOpened, conversations: set[str]) -> bool:
    """Wait until the new session sees every one of `conversations` (True), or `LINK_WAIT_SECONDS` have
    passed (False). A session that sees only its own browser's (e-mail not yet verified) is linked in
    the same way (the conversations service adds the new session as their creator)."""
    if not conversations:
        return True
    viewer = _viewer(opened.session_token, opened.session)
    deadline = time.monotonic() + LINK_WAIT_SECONDS
    pause = FIRST_PAUSE
    while True:
        try:
            page = await rpc.call(operations.conversations.list_conversations,
                                  ListConversations(viewer=viewer, limit=100))
            if conversations <= {conversation.id for conversation in page.conversations}:
                return True
        except ServiceError as error:
            if error.code not in PASSING:
                return False  # the sign-in itself succeeded: it is not turned into an error here
        if time.monotonic() + pause > deadline:
            log.warning("sign-in answered before the browser's conversations were linked",
                        conversations=len(conversations))
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)
