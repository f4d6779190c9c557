"""Changing conversations: every change and the event it publishes happen in the caller's transaction.

The writes of a message, an event entry and a new conversation are SQLAlchemy Core statements on the
session's connection (the models are the schema), not ORM flushes: a post is a handful of statements
compiled once. A `Conversation` given to these functions may be persistent (loaded by the ORM) or
transient (`load`, `visible`, `create_conversation`); the columns they change are written by Core and,
on a persistent one, marked as stored, so the ORM writes them no second time. Changes made elsewhere
(subject, assignee, attributes, reporter) stay the ORM's to flush.

A portal's settings are kept in the process (`settings_cache`): see its docstring for when they
are read again.
"""

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, or_, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select as core_select
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import Pool
from sqlmodel import Session

from contracts import roles
from contracts.conversations import Viewer
from contracts.rpc import Actor
from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.subjects import PORTAL_SETTINGS_CHANGED
from contracts.events import (
    AttachmentRef,
    ConversationClosed,
    ConversationCreated,
    ConversationReopened,
    MessagePosted,
)
from services.conversations import domain
from services.conversations.models import Attachment, Conversation, ConversationViewer, Customer, Message, PortalConfig
from services.runtime.announced import AnnouncedCache
from services.runtime.db import Prepared, connection_of, prepared_inserts
from services.runtime.outbox import record_event
from services.runtime.settings import Settings
from services.runtime.clock import now


@dataclass(frozen=True)
class Author:
    id: str | None
    kind: str  # customer | agent | system
    name: str | None = None  # for an author with no account (an API key): shown as the author


@dataclass(frozen=True)
class PortalRules:
    """A portal's conversation settings as the rules read them (a plain value: cheap to make)."""

    portal: str
    org_id: str
    my_conversations_enabled: bool = True
    reopen_enabled: bool = True
    reopen_policy: str = "always"
    reopen_within_days: int = 7
    detail_attributes: tuple[dict[str, str], ...] = ()
    max_body_chars: int | None = None
    max_files: int | None = None
    max_file_bytes: int | None = None


_RULES = tuple(f for f in PortalRules.__dataclass_fields__ if f not in ("portal", "org_id", "detail_attributes"))


_CONVERSATIONS: Table = Conversation.__table__  # type: ignore[attr-defined]
_VIEWERS: Table = ConversationViewer.__table__  # type: ignore[attr-defined]
_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]
_ATTACHMENTS: Table = Attachment.__table__  # type: ignore[attr-defined]
_SETTINGS: Table = PortalConfig.__table__  # type: ignore[attr-defined]
_CUSTOMERS: Table = Customer.__table__  # type: ignore[attr-defined]

# Seconds a portal's settings are used as read when no change was heard of (a change made to the
# database by hand, a notice lost while NATS reconnected): the longest a missed change can wait.
PORTAL_SETTINGS_MAX_AGE = 5.0


_settings_caches: "weakref.WeakKeyDictionary[Pool, AnnouncedCache[PortalRules]]" = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def settings_cache(bind: Any) -> AnnouncedCache[PortalRules]:
    """Portals' settings as this process last read them from the database behind `bind` (an Engine, or a
    session's bind), by slug; one cache per connection pool, which an engine shares with its
    `execution_options` copies. Settings change only through `admin.update_settings`, which announces the
    slug on `contracts.subjects.PORTAL_SETTINGS_CHANGED` (`AnnouncedCache`: every replica forgets them
    before the admin is answered); a portal without settings is kept too (as None)."""
    pool = bind.pool
    cache = _settings_caches.get(pool)
    if cache is None:
        with _caches_lock:
            cache = _settings_caches.setdefault(pool, AnnouncedCache(
                PORTAL_SETTINGS_CHANGED, max_age=PORTAL_SETTINGS_MAX_AGE, keep_missing=True))
    return cache


_READ_SETTINGS = core_select(*_SETTINGS.c).where(_SETTINGS.c.portal == bindparam("portal"))


def _read_rules(session: Session, portal: str) -> PortalRules | None:
    row = session.connection().execute(_READ_SETTINGS, {"portal": portal}).first()
    if row is None:
        return None
    return PortalRules(portal=portal, org_id=row.org_id, detail_attributes=tuple(row.detail_attributes),
                       **{name: getattr(row, name) for name in _RULES})


def _rules(config: PortalRules | None, portal: str, org_id: str) -> PortalRules:
    if config is None:
        return PortalRules(portal=portal, org_id=org_id)
    if config.org_id != org_id:  # portal slugs are unique across orgs; a mismatch is another org's portal
        raise ServiceError(ErrorCode.unknown_portal, f"There is no portal '{portal}'.")
    return config


def portal_config(session: Session, portal: str, org_id: str) -> PortalRules:
    """The portal's settings, or the defaults when the admin never changed them, as this process keeps
    them (`settings_cache`); `ServiceError(unknown_portal)` for another org's portal."""
    config = settings_cache(session.get_bind()).get(portal, lambda: _read_rules(session, portal))
    return _rules(config, portal, org_id)


def stored_portal_config(session: Session, portal: str, org_id: str) -> PortalRules:
    """`portal_config` read from the database itself, not from the process's cache (the admin console)."""
    return _rules(_read_rules(session, portal), portal, org_id)


_AUTHOR_NAME = Prepared(core_select(_CUSTOMERS.c.display_name, _CUSTOMERS.c.email)
                        .where(_CUSTOMERS.c.id == bindparam("id")))


def account_name(session: Session, user_id: str) -> str | None:
    """The name shown for an account: its display name, else its e-mail; None for an unknown account."""
    row = _AUTHOR_NAME.first(connection_of(session), {"id": user_id})
    return (row["display_name"] or row["email"]) if row else None


def limits_of(config: PortalRules | PortalConfig, settings: Settings) -> domain.Limits:
    """The portal's limits where its admin set them, else the process-wide defaults (`PORTICO_MAX_*`)."""
    return domain.Limits(max_body_chars=config.max_body_chars or settings.max_message_chars,
                  max_files=config.max_files if config.max_files is not None else settings.max_attachments,
                  max_file_bytes=config.max_file_bytes or settings.max_attachment_bytes)


# Version 0 is older than every event's: a row already there (from an event, or from an earlier request)
# is never changed, so the upsert of `readmodel.upsert_newer` comes down to "insert unless there".
_REMEMBER = prepared_inserts(_CUSTOMERS, lambda insert: insert.on_conflict_do_nothing(
    index_elements=[_CUSTOMERS.c.id]))


def remember_customer(session: Session, *, user_id: str, org_id: str, email: str | None, display_name: str | None,
                      kind: str) -> None:
    """A customer may act before auth's `UserRegistered` reaches us (delayed creation); keep what we
    know as version 0, which the event then overwrites."""
    connection = connection_of(session)
    _REMEMBER[connection.dialect.name].execute(connection, {
        "id": user_id, "org_id": org_id, "email": email or "", "display_name": display_name, "kind": kind,
        "registered_at": now(), "version": 0}).close()


_CONVERSATION_COLUMNS = tuple(_CONVERSATIONS.c)
_new_conversation = Conversation._sa_class_manager.new_instance  # type: ignore[attr-defined]
_MAPPER = Conversation.__mapper__  # type: ignore[attr-defined]


def _conversation(values: Any) -> Conversation:
    """A transient `Conversation` from all its columns' values (a mapping), made as the ORM makes a loaded
    one: no validation, the values are the stored ones."""
    if not _MAPPER.configured:
        configure_mappers()
    conversation = _new_conversation()
    conversation.__dict__.update(values)
    return conversation


_INSERT_CONVERSATION = Prepared(insert(_CONVERSATIONS))
_INSERT_VIEWER = Prepared(insert(_VIEWERS))
_INSERT_MESSAGE = Prepared(insert(_MESSAGES))
_INSERT_ATTACHMENT = Prepared(insert(_ATTACHMENTS))
# The columns a message or an event entry changes on its conversation (with what a reopen or close
# set just before), written in one UPDATE.
_ACTIVITY = ("status", "reply_channel", "closed_at", "preview", "updated_at", "last_activity_at",
             "last_agent_reply_at", "next_seq", "version")
_UPDATE_ACTIVITY = Prepared(update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("of_conversation"))
                            .values({name: bindparam(name) for name in _ACTIVITY}))
_SYNC_VIEWERS = Prepared(update(_VIEWERS).where(_VIEWERS.c.conversation_id == bindparam("of_conversation"))
                         .values(status=bindparam("status"), last_activity_at=bindparam("last_activity_at")))


def create_conversation(session: Session, *, org_id: str, portal: str, customer_id: str, channel: str,
                        subject: str, viewers: list[tuple[str, str]], linked_from: str | None = None,
                        thread_key: str | None = None) -> Conversation:
    """A new open conversation, its viewer rows and `ConversationCreated` (three INSERTs); returns it
    transient (not in the session: `add_message`/`add_event` write what they change themselves)."""
    at = now()
    values = dict(
        id=new_id(), org_id=org_id, portal=portal, customer_id=customer_id, channel=channel, reply_channel=channel,
        status="open", subject=domain.check_subject(subject), assignee_id=None, attributes={}, preview="",
        created_at=at, updated_at=at, last_activity_at=at, last_agent_reply_at=None, closed_at=None,
        linked_from=linked_from, thread_key=thread_key, next_seq=1, version=1)
    connection = connection_of(session)
    _INSERT_CONVERSATION.execute(connection, values).close()
    _INSERT_VIEWER.execute_many(connection, [
        {"viewer": viewer, "conversation_id": values["id"], "portal": portal, "role": role, "status": "open",
         "channel": channel, "last_activity_at": at, "read_at": at} for viewer, role in viewers])
    conversation = _conversation(values)
    record_event(session, ConversationCreated(
        conversation_id=conversation.id, portal=portal, customer_id=customer_id, channel=channel,  # type: ignore[arg-type]
        conversation_subject=conversation.subject, linked_from=linked_from),
        org_id=org_id, aggregate_id=conversation.id, aggregate_version=conversation.version)
    return conversation


def _bump(conversation: Conversation, *, public: bool) -> datetime:
    at = now()
    conversation.updated_at = at
    if public:
        conversation.last_activity_at = at
    conversation.version += 1
    return at


def _save_activity(session: Session, conversation: Conversation) -> None:
    """Write the `_ACTIVITY` columns of the conversation and of its viewer rows (two Core UPDATEs);
    on a persistent conversation they are then marked as stored, so the ORM does not write them again."""
    values = {name: getattr(conversation, name) for name in _ACTIVITY}
    connection = connection_of(session)
    _UPDATE_ACTIVITY.execute(connection, {"of_conversation": conversation.id, **values}).close()
    _SYNC_VIEWERS.execute(connection, {"of_conversation": conversation.id, "status": conversation.status,
                                       "last_activity_at": conversation.last_activity_at}).close()
    if not sa_inspect(conversation).transient:
        for name, value in values.items():
            set_committed_value(conversation, name, value)


@dataclass
class Entry:
    """A timeline entry just written (the `messages` row's values): what callers and `views.posted` read."""

    id: str
    conversation_id: str
    seq: int
    kind: str
    author_id: str | None
    author_kind: str
    visibility: str
    channel: str
    body: str | None
    event: str | None
    detail: dict[str, Any]
    created_at: datetime
    event_id: str | None = None


def _entry(session: Session, conversation: Conversation, *, kind: str, author: Author, visibility: str,
           channel: str, at: datetime, body: str | None = None, event: str | None = None,
           detail: dict[str, Any] | None = None, event_id: str | None = None, entry_id: str | None = None) -> Entry:
    entry = Entry(id=entry_id or new_id(), conversation_id=conversation.id, seq=conversation.next_seq, kind=kind,
                  author_id=author.id, author_kind=author.kind, visibility=visibility, channel=channel,
                  body=body, event=event, detail=detail or {}, created_at=at, event_id=event_id)
    conversation.next_seq += 1
    _INSERT_MESSAGE.execute(connection_of(session),
                            {**entry.__dict__, "redacted_at": None, "redacted_by": None}).close()
    return entry


def add_message(session: Session, conversation: Conversation, *, author: Author, body: str, channel: str,
                internal: bool = False, attachments: list[AttachmentRef] = (),  # type: ignore[assignment]
                in_reply_to: str | None = None) -> Entry:
    """A message or internal note, its files, and `MessagePosted`: an INSERT for the message (and one for
    its files), the outbox row, and the conversation's and its viewers' UPDATEs."""
    public = not internal
    at = _bump(conversation, public=public)
    message_id = new_id()
    visibility = "public" if public else "internal"
    if public:
        conversation.preview = domain.preview(body)
        if author.kind == "agent":
            conversation.last_agent_reply_at = at
    # A note's text never leaves this service: the event says a note was added, not what it says.
    envelope = record_event(session, MessagePosted(
        conversation_id=conversation.id, message_id=message_id, portal=conversation.portal,
        customer_id=conversation.customer_id, author_id=author.id, author_kind=author.kind,  # type: ignore[arg-type]
        visibility=visibility, channel=channel, body=body if public else "",  # type: ignore[arg-type]
        attachments=list(attachments) if public else [], in_reply_to=in_reply_to,
        conversation_subject=conversation.subject), org_id=conversation.org_id, aggregate_id=conversation.id,
        aggregate_version=conversation.version)
    message = _entry(session, conversation, kind="note" if internal else "message", author=author,
                     visibility=visibility, channel=channel, at=at, body=body,
                     detail={"author_name": author.name} if author.name else None, event_id=envelope.id,
                     entry_id=message_id)
    if attachments:
        _INSERT_ATTACHMENT.execute_many(connection_of(session), [
            {"id": ref.attachment_id, "org_id": conversation.org_id, "conversation_id": conversation.id,
             "message_id": message_id, "filename": ref.filename, "content_type": ref.content_type,
             "size": ref.size, "sha256": ref.sha256, "created_at": at, "deleted_at": None} for ref in attachments])
    _save_activity(session, conversation)
    return message


def add_event(session: Session, conversation: Conversation, *, author: Author, event: str,
              detail: dict[str, Any] | None = None, internal: bool = False) -> Entry:
    """A timeline entry: closed, reopened, subject_changed, assigned, reporter_changed."""
    at = _bump(conversation, public=not internal)
    message = _entry(session, conversation, kind="event", author=author,
                     visibility="internal" if internal else "public", channel=conversation.reply_channel,
                     at=at, event=event, detail=detail)
    _save_activity(session, conversation)
    return message


def close(session: Session, conversation: Conversation, *, author: Author) -> None:
    if conversation.status == "closed":
        return
    conversation.status = "closed"
    conversation.closed_at = now()
    add_event(session, conversation, author=author, event="closed")
    record_event(session, ConversationClosed(
        conversation_id=conversation.id, portal=conversation.portal, customer_id=conversation.customer_id,
        closed_by=author.id), org_id=conversation.org_id, aggregate_id=conversation.id,
        aggregate_version=conversation.version)


def reopen(session: Session, conversation: Conversation, *, author: Author) -> None:
    """Open again; from now on answers go through the `portal` channel."""
    if conversation.status == "open":
        return
    previous = conversation.reply_channel
    conversation.status = "open"
    conversation.closed_at = None
    conversation.reply_channel = "portal"
    add_event(session, conversation, author=author, event="reopened")
    record_event(session, ConversationReopened(
        conversation_id=conversation.id, portal=conversation.portal, customer_id=conversation.customer_id,
        reopened_by=author.id, reopened_by_kind=author.kind, previous_channel=previous),  # type: ignore[arg-type]
        org_id=conversation.org_id, aggregate_id=conversation.id, aggregate_version=conversation.version)


def write_to_closed(session: Session, conversation: Conversation, config: PortalRules, *, author: Author,
                    channel: str, viewers: list[tuple[str, str]]) -> Conversation:
    """Where a customer's message to a closed conversation goes, on any channel: the conversation
    reopened where the portal's policy allows it (`domain.message_to_closed`), else a new one on
    `channel` linked to it (`linked_from`, and a `continues` entry), seen by `viewers` and the
    closed one's reporter."""
    outcome = domain.message_to_closed(enabled=config.reopen_enabled, policy=config.reopen_policy,
                                       within_days=config.reopen_within_days, closed_at=conversation.closed_at,
                                       now=now())
    return _apply_reopen(session, conversation, outcome, author=author, channel=channel, viewers=viewers)


def _apply_reopen(session: Session, conversation: Conversation, outcome: str, *, author: Author, channel: str,
                  viewers: list[tuple[str, str]]) -> Conversation:
    if outcome == "reopen":
        reopen(session, conversation, author=author)
        return conversation
    if all(viewer != conversation.customer_id for viewer, _ in viewers):
        viewers = viewers + [(conversation.customer_id, "reporter")]
    successor = create_conversation(
        session, org_id=conversation.org_id, portal=conversation.portal, customer_id=conversation.customer_id,
        channel=channel, subject=conversation.subject, viewers=viewers, linked_from=conversation.id,
        thread_key=conversation.thread_key if channel == conversation.channel else None)
    add_event(session, successor, author=author, event="continues", detail={"conversation_id": conversation.id})
    return successor


def reopen_on_request(session: Session, conversation: Conversation, config: PortalRules, *, author: Author,
                      viewers: list[tuple[str, str]]) -> Conversation:
    """A customer asked the portal to reopen (`domain.customer_reopen`): reopened, or a new linked
    conversation under the `new_conversation` policy; raises `reopen_disabled` or
    `reopen_window_passed` where the policy refuses."""
    outcome = domain.customer_reopen(enabled=config.reopen_enabled, policy=config.reopen_policy,
                                     within_days=config.reopen_within_days, closed_at=conversation.closed_at,
                                     now=now())
    return _apply_reopen(session, conversation, outcome, author=author, channel="portal", viewers=viewers)


def viewers_of(viewer: Viewer) -> list[tuple[str, str]]:
    """Who sees a conversation a customer starts: its reporter, and the creating browser when that
    browser sees only its own."""
    rows = [(viewer.user_id, "reporter")]
    if viewer.sees_only_own_browser:
        rows.append((domain.viewer_key(viewer), "creator"))
    return rows


_VISIBLE = (core_select(*_CONVERSATION_COLUMNS)
            .join(_VIEWERS, _VIEWERS.c.conversation_id == _CONVERSATIONS.c.id)
            .where(_VIEWERS.c.viewer == bindparam("viewer"),
                   or_(*(_VIEWERS.c.role == role.value for role in sorted(domain.SEES_CONVERSATION))),
                   _CONVERSATIONS.c.id == bindparam("conversation_id"),
                   _CONVERSATIONS.c.portal == bindparam("portal"), _CONVERSATIONS.c.org_id == bindparam("org_id"))
            .limit(1))
_OF_ORG = core_select(*_CONVERSATION_COLUMNS).where(_CONVERSATIONS.c.id == bindparam("conversation_id"),
                                                    _CONVERSATIONS.c.org_id == bindparam("org_id"))
# A write path reads the conversation row locked: two writers to one conversation (a customer and an
# agent at the same moment) take its next `seq` one after the other. On PostgreSQL that is
# `FOR UPDATE`; SQLite has one writer at a time already and SQLAlchemy leaves the clause out there.
_VISIBLE_LOCKED = _VISIBLE.with_for_update(of=_CONVERSATIONS)
_OF_ORG_LOCKED = Prepared(_OF_ORG.with_for_update())
_READ_VISIBLE = {False: Prepared(_VISIBLE), True: Prepared(_VISIBLE_LOCKED)}


def visible(session: Session, viewer: Viewer, conversation_id: str, *, for_update: bool = False) -> Conversation:
    """The conversation if this viewer may see it (transient: one Core SELECT, no ORM load);
    `not_found` otherwise, exactly as for a missing one. `for_update`: the row is locked until commit
    (a write path: see `_VISIBLE_LOCKED`)."""
    row = _READ_VISIBLE[for_update].first(connection_of(session), {
        "viewer": domain.viewer_key(viewer), "conversation_id": conversation_id,
        "portal": viewer.portal, "org_id": viewer.org_id})
    if row is None:
        raise ServiceError(ErrorCode.not_found, "No such conversation.")
    return _conversation(row)


def load(session: Session, org_id: str, conversation_id: str) -> Conversation:
    """`of_org` as one Core SELECT, the conversation transient: for a path whose only changes are
    `add_message`'s and `add_event`'s (they write those themselves). The row is locked until commit."""
    row = _OF_ORG_LOCKED.first(connection_of(session), {"conversation_id": conversation_id, "org_id": org_id})
    if row is None:
        raise ServiceError(ErrorCode.not_found, "No such conversation.")
    return _conversation(row)


def of_org(session: Session, org_id: str, conversation_id: str, *, for_update: bool = False) -> Conversation:
    """The org's conversation, persistent in the session (its changes are flushed by the ORM);
    `not_found` for a missing one or another org's. `for_update`: the row is locked until commit."""
    conversation = session.get(Conversation, conversation_id, with_for_update=for_update)
    if conversation is None or conversation.org_id != org_id:
        raise ServiceError(ErrorCode.not_found, "No such conversation.")
    return conversation


def portal_open(session: Session, viewer: Viewer) -> PortalRules:
    """The portal's rules for a customer's request; `my_conversations_disabled` where My
    Conversations is turned off."""
    config = portal_config(session, viewer.portal, viewer.org_id)
    if not config.my_conversations_enabled:
        raise ServiceError(ErrorCode.my_conversations_disabled,
                           f"My Conversations is turned off on portal '{viewer.portal}'.")
    return config


def agent_author(actor: Actor) -> Author:
    """The author an agent or API key writes as; `forbidden` for a role that may not work
    conversations (`contracts.roles`)."""
    if not roles.can_work_conversations(actor.role):
        raise ServiceError(ErrorCode.forbidden, "Only agents and admins work conversations.")
    kind, _, ident = actor.principal.partition(":")
    if kind == "user":
        return Author(ident, "agent")
    return Author(actor.principal, "agent", actor.name or domain.SUPPORT_NAME)
