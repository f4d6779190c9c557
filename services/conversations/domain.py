"""conversations' rules, as pure functions: no database, no NATS."""

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from contracts.conversations import Viewer
from contracts.errors import ErrorCode, ServiceError
from contracts.events import AttachmentRef
from contracts.states import ViewerRole
from services.runtime.files import ALLOWED_TYPES

PREVIEW_CHARS = 140
# Characters a message may hold besides printable text: PostgreSQL cannot store NUL, and the rest
# are invisible controls that only ever arrive by accident or as an attack on a display.
ALLOWED_CONTROLS = frozenset("\n\r\t")
# The control characters (below U+0020) a message may not hold: all but ALLOWED_CONTROLS.
_REFUSED_CONTROLS = re.compile(
    "[" + "".join(re.escape(chr(c)) for c in range(32) if chr(c) not in ALLOWED_CONTROLS) + "]")


# The author shown for an answer written without a staff account (an API key with no name).
SUPPORT_NAME = "Support team"

# Who sees a conversation in My Conversations: its reporter, the reporter's earlier identities and
# the people who wrote in it, and the browser that started it while anonymous or unverified. An
# unverified address it was linked away from (`former`) stays on the record and sees nothing.
SEES_CONVERSATION = frozenset({ViewerRole.reporter, ViewerRole.participant, ViewerRole.creator})


def viewer_key(viewer: Viewer) -> str:
    """The list a viewer reads (`viewers.viewer`): their account's (the user id), or only their
    browser's (`s:<session key>`) when they are anonymous or signed in with an unverified e-mail."""
    return f"s:{viewer.session_key}" if viewer.sees_only_own_browser else viewer.user_id


def check_body(body: str, max_chars: int) -> str:
    """The text as stored; counted in characters (code points), not bytes."""
    if not body.strip():
        raise ServiceError(ErrorCode.message_empty, "The message is empty; write something.")
    if len(body) > max_chars:
        raise ServiceError(ErrorCode.message_too_long,
                           f"The message has {len(body):,} characters; at most {max_chars:,} are allowed.")
    if _REFUSED_CONTROLS.search(body):
        raise ServiceError(ErrorCode.invalid_request, "The message contains control characters.")
    return body


@dataclass(frozen=True)
class Limits:
    """A portal's message limits: characters of text, files per message, bytes per file."""

    max_body_chars: int
    max_files: int
    max_file_bytes: int


# Types a message's files may have, checked from their content (`services.runtime.files`).
ALLOWED_CONTENT_TYPES = frozenset(ALLOWED_TYPES.values())


def check_message(body: str, attachments: list[AttachmentRef], limits: Limits) -> str:
    """The portal's limits, for every channel and either side (portal, e-mail, chat, channel
    webhooks, agents): the text as stored, or `ServiceError` (`message_empty`, `message_too_long`,
    `invalid_request`, `too_many_attachments`, `attachment_too_large`, `attachment_empty`,
    `attachment_type_not_allowed`). DESIGN.md, "Portal messages"."""
    body = check_body(body, limits.max_body_chars)
    check_attachments(attachments, max_files=limits.max_files, max_file_bytes=limits.max_file_bytes,
                      allowed_types=ALLOWED_CONTENT_TYPES)
    return body


def check_subject(subject: str) -> str:
    subject = " ".join(subject.split())
    if not subject:
        raise ServiceError(ErrorCode.invalid_request, "subject: must not be empty.")
    if len(subject) > 200:
        raise ServiceError(ErrorCode.invalid_request, "subject: at most 200 characters.")
    return subject


def check_attachments(refs: list[AttachmentRef], *, max_files: int, max_file_bytes: int,
                      allowed_types: set[str] | frozenset[str]) -> None:
    """The gateway checked the files' content; this holds the count, sizes and types to the portal's limits."""
    if len(refs) > max_files:
        raise ServiceError(ErrorCode.too_many_attachments,
                           f"{len(refs)} files attached; at most {max_files} are allowed.")
    for ref in refs:
        if ref.size > max_file_bytes:
            raise ServiceError(ErrorCode.attachment_too_large,
                               f"{ref.filename} is {ref.size:,} bytes; at most {max_file_bytes:,} are allowed.")
        if ref.size == 0:
            raise ServiceError(ErrorCode.attachment_empty, f"{ref.filename} is empty.")
        if ref.content_type not in allowed_types:
            raise ServiceError(ErrorCode.attachment_type_not_allowed, f"{ref.filename}: this type is not allowed.")


def preview(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[:PREVIEW_CHARS - 1] + "…"


ReopenOutcome = Literal["reopen", "new_conversation"]


def message_to_closed(*, enabled: bool, policy: str, within_days: int, closed_at: datetime | None,
                      now: datetime) -> ReopenOutcome:
    """What a customer's message to a closed conversation does, on every channel (portal, e-mail,
    chat, channel webhooks): `reopen` where the portal's reopen policy allows it, otherwise
    `new_conversation`, a new conversation linked to the closed one, so nothing the customer wrote
    is lost. Policies: `always`, `within_days` (reopen only within `within_days` days of closing),
    `new_conversation`; `enabled=False` turns reopening off. (DESIGN.md, "One rule on every channel".)
    """
    if not enabled or policy == "new_conversation":
        return "new_conversation"
    if policy == "within_days" and closed_at is not None and now - closed_at > timedelta(days=within_days):
        return "new_conversation"
    return "reopen"


def customer_reopen(*, enabled: bool, policy: str, within_days: int, closed_at: datetime | None,
                    now: datetime) -> ReopenOutcome:
    """A customer asking the portal to reopen: `message_to_closed`, except that where reopening is
    off or its window has passed the portal says so (`reopen_disabled`, `reopen_window_passed`)
    rather than starting a new conversation the customer did not ask for."""
    outcome = message_to_closed(enabled=enabled, policy=policy, within_days=within_days, closed_at=closed_at,
                                now=now)
    if not enabled:
        raise ServiceError(ErrorCode.reopen_disabled, "Reopening conversations is turned off on this portal; "
                                                      "start a new conversation instead.")
    if outcome == "new_conversation" and policy == "within_days":
        raise ServiceError(ErrorCode.reopen_window_passed,
                           f"This conversation was closed more than {within_days} days ago and can no longer be "
                           "reopened; start a new conversation instead.")
    return outcome


def reopen_option(*, enabled: bool, policy: str, within_days: int, closed_at: datetime | None,
                  now: datetime) -> str:
    """What `customer_reopen` would do now, for a page to offer it: `reopen`, `new_conversation`, or
    the refusal it would raise (`window_passed`, `disabled`)."""
    try:
        return customer_reopen(enabled=enabled, policy=policy, within_days=within_days, closed_at=closed_at, now=now)
    except ServiceError as exc:
        return "disabled" if exc.code is ErrorCode.reopen_disabled else "window_passed"


def staff_unread(customer_wrote_at: datetime | None, seen_at: datetime | None) -> bool:
    """Whether the customer wrote after `seen_at` (when a staff member last opened the conversation, or
    the last answer); never seen counts as before."""
    return customer_wrote_at is not None and (seen_at is None or customer_wrote_at > seen_at)


def encode_cursor(at: datetime, conversation_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), conversation_id]).encode()).decode().rstrip("=")


CURSOR_ID = re.compile(r"^[0-9A-Za-z]{1,40}$")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(time in UTC, conversation id) of a cursor from `encode_cursor`; anything else (a time without its
    offset or out of range, an id that is not one) is `ServiceError(invalid_request)`."""
    try:
        at, conversation_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(conversation_id, str) or not CURSOR_ID.match(conversation_id):
            raise ValueError("not a cursor")
        return moment.astimezone(UTC), conversation_id
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise ServiceError(ErrorCode.invalid_request, "cursor: not a cursor this API returned.") from exc


def fingerprint(operation: str, *parts: object) -> str:
    """Identifies a request's input, so that a reused Idempotency-Key with other input is refused."""
    return hashlib.sha256(json.dumps([operation, *parts], sort_keys=True, default=str).encode()).hexdigest()


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
