"""`Idempotency-Key`: a retried POST gets the first answer back and changes nothing.

The key is claimed first thing in the request's transaction, so a concurrent duplicate waits for
the first one to commit (SQLite: one writer at a time; PostgreSQL: the unique key) and then
answers with what the first one stored. The effect and the stored answer commit together.

The claim is one `INSERT .. ON CONFLICT DO NOTHING RETURNING` and the answer one `UPDATE` (Core statements,
no savepoint): a key already taken is seen from the row count, without an error that would spoil
the transaction.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, delete, select

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Reply
from services.conversations.models import IdempotencyRecord
from services.runtime.db import Prepared, connection_of, prepared_inserts

R = TypeVar("R", bound=Reply)

KEEP_FOR = timedelta(hours=24)


_TABLE: Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
# RETURNING tells whether the row was inserted (the row count is not reported by every driver).
_CLAIMS = prepared_inserts(_TABLE, lambda insert: insert.on_conflict_do_nothing(
    index_elements=[_TABLE.c.scope, _TABLE.c.key]).returning(_TABLE.c.scope))
_ANSWER = Prepared(update(_TABLE).where(_TABLE.c.scope == bindparam("k_scope"), _TABLE.c.key == bindparam("k_key"))
                   .values(response=bindparam("response"), resource_id=bindparam("resource_id")))
_STORED = Prepared(core_select(_TABLE.c.fingerprint, _TABLE.c.response).where(
    _TABLE.c.scope == bindparam("scope"), _TABLE.c.key == bindparam("key")))


@dataclass
class Claim:
    scope: str | None = None  # None: no key was given, nothing is stored
    key: str | None = None

    def answer(self, session: Session, reply: R, resource_id: str) -> R:
        """Store the answer beside the effect (one UPDATE of the claimed row); returns it unchanged."""
        if self.scope is not None:
            _ANSWER.execute(connection_of(session), {"k_scope": self.scope, "k_key": self.key,
                                                     "response": reply.model_dump_json(),
                                                     "resource_id": resource_id}).close()
        return reply


def claim(session: Session, scope: str, key: str | None, fingerprint_of: Callable[[], str],
          reply_model: type[R]) -> Claim | R:
    """A `Claim` to fill in, or the stored answer (with `replayed=True`) when this key was used before.
    `fingerprint_of()`: the request's fingerprint (`domain.fingerprint`), computed only when a key is given.

    Raises `ServiceError`: `invalid_request` (a blank or unprintable key), `idempotency_key_reused`
    (the key was used for another request: another fingerprint), `idempotency_in_progress` (the
    first request with it has not committed its answer).
    """
    if key is None:
        return Claim()
    if not key.strip() or not key.isprintable():
        raise ServiceError(ErrorCode.invalid_request, "Idempotency-Key: must be printable and not blank.")
    fingerprint = fingerprint_of()
    connection = connection_of(session)
    claimed = _CLAIMS[connection.dialect.name].first(connection, {
        "scope": scope, "key": key, "fingerprint": fingerprint, "response": "", "resource_id": "",
        "created_at": datetime.now(UTC)})
    if claimed is not None:
        return Claim(scope, key)
    stored = _STORED.first(connection, {"scope": scope, "key": key})
    if stored is None or not stored["response"]:
        raise ServiceError(ErrorCode.idempotency_in_progress,
                           "A request with this Idempotency-Key is still being handled; retry shortly.")
    if stored["fingerprint"] != fingerprint:
        raise ServiceError(ErrorCode.idempotency_key_reused,
                           "This Idempotency-Key was used for a different request; use a new key.")
    reply = reply_model.model_validate_json(stored["response"])
    return reply.model_copy(update={"replayed": True})


def redact_answers(session: Session, conversation_id: str, message_id: str) -> None:
    """Stored answers keep answering retries (a retry must not post the text again), but show the
    message as redacted: its text must not survive in them."""
    records = session.exec(select(IdempotencyRecord).where(
        col(IdempotencyRecord.resource_id).in_([conversation_id, message_id]))).all()
    for record in records:
        answer = json.loads(record.response or "null")
        if _redact(answer, message_id):
            record.response = json.dumps(answer)
            session.add(record)


def _redact(node: object, message_id: str) -> bool:
    if isinstance(node, list):
        return any([_redact(item, message_id) for item in node])
    if not isinstance(node, dict):
        return False
    if node.get("id") == message_id and "body" in node:
        node.update(body=None, redacted=True, attachments=[])
        return True
    return any([_redact(value, message_id) for value in node.values()])


def prune(session: Session) -> int:
    result = session.exec(delete(IdempotencyRecord).where(  # type: ignore[call-overload]
        col(IdempotencyRecord.created_at) < datetime.now(UTC) - KEEP_FOR))
    return result.rowcount or 0
