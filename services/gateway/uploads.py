"""Message bodies from the HTTP edge: JSON, or multipart with files.

Files are checked by content here, at the edge, before anything is stored; then they go into the
attachments Object Store and conversations gets references (files do not fit in a NATS message).
If the message is then refused, or a retry turns out to be a replay, the stored files are deleted.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from contracts.conversations import GetMessageLimits, MessageLimits
from contracts.errors import ErrorCode, ServiceError
from contracts.events import AttachmentRef
from services.runtime.files import FileRefused, check_files
from services.runtime.objects import delete_attachments, store_attachments
from services.runtime.rpc import RpcClient, validation_message


# Bytes of a JSON body: the longest body an admin may allow (100,000 characters), each escaped as
# a UTF-16 surrogate pair (12 bytes), with room to spare.
JSON_LIMIT = 2 * 1024 * 1024
FORM_OVERHEAD = 64 * 1024  # multipart headers and boundaries


@dataclass
class Incoming:
    fields: dict[str, object]
    attachments: list[AttachmentRef] = field(default_factory=list)


async def read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ServiceError(ErrorCode.payload_too_large, f"The request is larger than {limit:,} bytes.")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ServiceError(ErrorCode.payload_too_large, f"The request is larger than {limit:,} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what `request.form()` parses, instead of the consumed stream
    return body


def parse_json(raw: bytes, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ServiceError(ErrorCode.invalid_request, "The request body is not valid JSON.") from exc
        raise ServiceError(ErrorCode.invalid_request, validation_message(exc)) from exc


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


async def _store(request: Request, files: list[tuple[str, bytes]], limits: MessageLimits) -> list[AttachmentRef]:
    try:
        checked = check_files(files, max_files=limits.max_files, max_file_bytes=limits.max_file_bytes)
    except FileRefused as exc:
        raise ServiceError(exc.code, exc.message) from exc
    return await store_attachments(request.app.state.broker.config.connection_state.stream, checked)


async def read_message(request: Request, rpc: RpcClient, model: type[BaseModel], *, org_id: str,
                       portal: str | None = None, conversation_id: str | None = None) -> Incoming:
    """The fields of `model` from a JSON body, or from a multipart form with repeated `files`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        if content_type not in ("application/json", ""):
            raise ServiceError(ErrorCode.invalid_request, "Send JSON (application/json) or multipart/form-data.")
        return Incoming(fields=parse_json(await read_capped(request, JSON_LIMIT), model).model_dump())
    limits = await rpc.call("conversations", "message_limits", GetMessageLimits(
        org_id=org_id, portal=portal, conversation_id=conversation_id),
                            MessageLimits)
    # Room for one file more than allowed, so that a message with one too many gets `too_many_attachments`.
    await read_capped(request, (limits.max_files + 1) * limits.max_file_bytes + limits.max_body_chars * 4
                      + FORM_OVERHEAD)
    try:
        form = await request.form(max_files=100, max_fields=20)
    except MultiPartException as exc:
        raise ServiceError(ErrorCode.invalid_request, f"Malformed multipart body: {exc.message}") from exc
    values: dict[str, object] = {}
    files: list[tuple[str, bytes]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "files":
                raise ServiceError(ErrorCode.invalid_request, f"Files go in the `files` field, not `{name[:40]}`.")
            files.append((value.filename or "attachment", await value.read()))
        elif name in model.model_fields:
            values[name] = _flag(value) if model.model_fields[name].annotation is bool else value
        else:
            raise ServiceError(ErrorCode.invalid_request, f"Unknown form field `{name[:40]}`.")
    await form.close()
    fields = parse_json(json.dumps(values).encode(), model).model_dump()
    return Incoming(fields=fields, attachments=await _store(request, files, limits))


@asynccontextmanager
async def owned_by_reply(request: Request, incoming: Incoming) -> AsyncIterator[list[bool]]:
    """Deletes the stored files unless the body sets `kept[0] = True` (the message that owns them committed)."""
    kept = [False]
    try:
        yield kept
    finally:
        if not kept[0]:
            await delete_attachments(request.app.state.broker.config.connection_state.stream,
                                     [ref.attachment_id for ref in incoming.attachments], best_effort=True)
