"""Message bodies from the HTTP edge: JSON, or multipart with files.

Files are checked by content here, at the edge, before anything is stored; then they go into the
attachments Object Store and conversations gets references (files do not fit in a NATS message).
If the message is then refused, or a retry turns out to be a replay, the stored files are deleted.

A multipart body is never held whole in memory: it is refused with `413 payload_too_large` as soon as it
is known to be over the portal's bound (its Content-Length, or the bytes read so far when it has none);
its files are spooled to disk as they arrive (`SPOOL_BYTES` of each in memory), a file over the portal's
size limit is refused without being read, and the others are read one at a time to check them, then
streamed from disk into the Object Store. Memory per request: about `SPOOL_BYTES` per file part plus one
file of at most the portal's `max_file_bytes`.
"""

import json
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts import operations
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
SPOOL_BYTES = 64 * 1024    # of each uploaded file kept in memory before it goes to a temporary file
MAX_FORM_FILES = 100       # file parts read at all; more than the portal allows is `too_many_attachments`
MAX_FORM_FIELDS = 20


@dataclass
class Incoming:
    fields: dict[str, object]
    attachments: list[AttachmentRef] = field(default_factory=list)


def _too_large(limit: int) -> ServiceError:
    return ServiceError(ErrorCode.payload_too_large, f"The request is larger than {limit:,} bytes.")


def refuse_declared_length(request: Request, limit: int) -> None:
    """`413 payload_too_large` before reading anything when the Content-Length is over `limit` bytes."""
    declared = request.headers.get("content-length", "").strip()
    # Compared as text first: Python refuses to turn over 4,300 digits into an int.
    if declared.isdigit() and (len(declared.lstrip("0")) > len(str(limit)) or int(declared) > limit):
        raise _too_large(limit)


async def capped_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; `413 payload_too_large` once more than `limit` bytes came."""
    refuse_declared_length(request, limit)
    total = 0
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            yield chunk


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body, for bodies small enough to hold (JSON); over `limit` bytes is `413 payload_too_large`."""
    body = b"".join([chunk async for chunk in capped_stream(request, limit)])
    request._body = body  # for whoever reads the body again, instead of the consumed stream
    return body


def parse_json(raw: bytes, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ServiceError(ErrorCode.invalid_request, "The request body is not valid JSON.") from exc
        raise ServiceError(ErrorCode.invalid_request, validation_message(exc, root="body")) from exc


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def message_request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body with `read_message(..., model)`: JSON of `model`, or
    multipart/form-data with the same fields as parts and repeated `files`, and nothing else."""
    schema = model.model_json_schema()
    files = {"type": "array", "items": {"type": "string", "format": "binary"},
             "description": "Attachments, one part each (the portal's limits apply; types are checked by content)."}
    form = {**schema, "properties": {**schema["properties"], "files": files}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema},
                                                          "multipart/form-data": {"schema": form}}}}


class _SpooledForm(MultiPartParser):
    spool_max_size = SPOOL_BYTES


async def read_form(request: Request, limit: int) -> FormData:
    """A multipart/form-data body of at most `limit` bytes, its files spooled to temporary files (the
    caller closes the form). Malformed multipart is `invalid_request`; over the limit `payload_too_large`."""
    parser = _SpooledForm(request.headers, capped_stream(request, limit), max_files=MAX_FORM_FILES,
                          max_fields=MAX_FORM_FIELDS)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise ServiceError(ErrorCode.invalid_request, f"Malformed multipart body: {exc.message}") from exc


async def _store(request: Request, files: list[tuple[str, bytes | BinaryIO]],
                 limits: MessageLimits) -> list[AttachmentRef]:
    try:
        checked = check_files(files, max_files=limits.max_files, max_file_bytes=limits.max_file_bytes)
    except FileRefused as exc:
        raise ServiceError(exc.code, exc.message) from exc
    return await store_attachments(request.app.state.broker.config.connection_state.stream, checked)


async def read_message(request: Request, rpc: RpcClient, model: type[BaseModel], *, org_id: str,
                       portal: str | None = None, conversation_id: str | None = None,
                       typed: dict[str, str] | None = None) -> Incoming:
    """The fields of `model` from a JSON body, or from a multipart form with repeated `files`.

    For a page's form, pass `typed`: it receives the text fields as the customer typed them as soon as they
    are read, so that a refused form can show them again; and a file field left empty (a part with no file
    name and no bytes, which browsers send when no file was chosen; HTML, "constructing the entry list")
    is no file rather than an empty one.

    Errors: `invalid_request` (not JSON or multipart, malformed, unknown or invalid fields),
    `payload_too_large` (413: a JSON body over `JSON_LIMIT` bytes; a multipart body over room for one file
    more than the portal allows), and the file refusals of `services.runtime.files.check_files`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        if content_type not in ("application/json", ""):
            raise ServiceError(ErrorCode.invalid_request, "Send JSON (application/json) or multipart/form-data.")
        return Incoming(fields=parse_json(await read_capped(request, JSON_LIMIT), model).model_dump())
    limits = await rpc.call(operations.conversations.message_limits, GetMessageLimits(
        org_id=org_id, portal=portal, conversation_id=conversation_id))
    # Room for one file more than allowed, so that a message with one too many gets `too_many_attachments`.
    form = await read_form(request, (limits.max_files + 1) * limits.max_file_bytes + limits.max_body_chars * 4
                           + FORM_OVERHEAD)
    try:
        values: dict[str, object] = {}
        files: list[tuple[str, bytes | BinaryIO]] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if typed is not None and not value.filename and not value.size:
                    continue
                if name != "files":
                    raise ServiceError(ErrorCode.invalid_request,
                                       f"Files go in the `files` field, not `{name[:40]}`.")
                files.append((value.filename or "attachment", value.file))
            elif name in model.model_fields:
                if typed is not None:
                    typed[name] = value
                values[name] = _flag(value) if model.model_fields[name].annotation is bool else value
            else:
                raise ServiceError(ErrorCode.invalid_request, f"Unknown form field `{name[:40]}`.")
        fields = parse_json(json.dumps(values).encode(), model).model_dump()
        return Incoming(fields=fields, attachments=await _store(request, files, limits))
    finally:
        await form.close()


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
