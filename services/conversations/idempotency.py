"""`Idempotency-Key`: a retried POST gets the first answer back and changes nothing.

The key is claimed first thing in the request's transaction, so a concurrent duplicate waits for
the first one to commit (SQLite: one writer at a time; PostgreSQL: the unique key) and then
answers with what the first one stored. The effect and the stored answer commit together.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Reply
from services.conversations.models import IdempotencyRecord

R = TypeVar("R", bound=Reply)

KEEP_FOR = timedelta(hours=24)


@dataclass
class Claim:
    record: IdempotencyRecord | None

    def answer(self, session: Session, reply: R, resource_id: str) -> R:
        """Store the answer beside the effect; returns it unchanged."""
        if self.record is not None:
            self.record.response = reply.model_dump_json()
            self.record.resource_id = resource_id
            session.add(self.record)
        return reply


def claim(session: Session, scope: str, key: str | None, fingerprint: str, reply_model: type[R]) -> Claim | R:
    """A `Claim` to fill in, or the stored answer (with `replayed=True`) when this key was used before."""
    if key is None:
        return Claim(None)
    if not key.strip() or not key.isprintable():
        raise ServiceError(ErrorCode.invalid_request, "Idempotency-Key: must be printable and not blank.")
    record = IdempotencyRecord(scope=scope, key=key, fingerprint=fingerprint, response="", resource_id="",
                               created_at=datetime.now(UTC))
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
        return Claim(record)
    except IntegrityError:
        pass
    stored = session.get(IdempotencyRecord, (scope, key), populate_existing=True)
    if stored is None or not stored.response:
        raise ServiceError(ErrorCode.idempotency_in_progress,
                           "A request with this Idempotency-Key is still being handled; retry shortly.")
    if stored.fingerprint != fingerprint:
        raise ServiceError(ErrorCode.idempotency_key_reused,
                           "This Idempotency-Key was used for a different request; use a new key.")
    reply = reply_model.model_validate_json(stored.response)
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
