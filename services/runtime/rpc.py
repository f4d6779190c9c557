"""Typed request/reply over NATS: `rpc.<service>.<operation>`, queue group = service name.

Replies are `{"data": ...}` or an `ErrorBody`; the caller gets the reply model back or a
`ServiceError` whose code maps to an HTTP status.
"""

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from faststream.nats import NatsBroker
from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.emails import INVALID_EMAIL_ERROR
from contracts.errors import ErrorCode, ServiceError
from contracts.operations import Operation, ReplyT, RequestT
from services.runtime import tracing
from services.runtime.logging import current_correlation_id, get_logger

log = get_logger("portico.rpc")

class ValidationErrors(Protocol):
    """pydantic's `ValidationError` or FastAPI's `RequestValidationError`: both list their errors."""

    def errors(self) -> Any: ...


def validation_message(exc: ValidationErrors, root: str = "") -> str:
    """`"<field path>: <problem>; ..."` for the first five problems, e.g. `request.email: Field required`.

    `root` is put before every path (`"body"` for a model read from an HTTP body: `body.subject`).
    """
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        if root:
            where = f"{root}.{where}" if where else root
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def validation_code(exc: ValidationErrors) -> ErrorCode:
    """`invalid_email` when the first problem is an address that cannot be normalised, else `invalid_request`."""
    errors = exc.errors()
    return ErrorCode.invalid_email if errors and errors[0].get("type") == INVALID_EMAIL_ERROR \
        else ErrorCode.invalid_request


def error_reply(exc: Exception) -> dict:
    """The error body an endpoint answers when handling a request raised `exc`: a `ServiceError`'s own
    body, `invalid_request`/`invalid_email` for a request that does not validate, else `internal_error`
    (logged here, its detail never sent)."""
    if isinstance(exc, ServiceError):
        return exc.body().model_dump(mode="json")
    if isinstance(exc, ValidationError):
        return {"error": validation_code(exc).value, "message": validation_message(exc)}
    log.error("rpc endpoint failed", error=repr(exc), exc_info=exc)
    return {"error": ErrorCode.internal_error.value, "message": "The service failed to answer; see its logs."}


def error_body(exc: Exception) -> bytes:
    """`error_reply(exc)` as the JSON bytes an endpoint sends."""
    return json.dumps(error_reply(exc)).encode()


def data_body(reply: BaseModel | bytes) -> bytes:
    """A reply model as the JSON bytes an endpoint sends: `{"data": <reply>}` (what `RpcClient` reads, and
    `RpcClient.call_json` passes through). A reply given as bytes is the model already written as JSON by
    the endpoint (the bytes its serialiser would write, e.g. kb's search page): sent as it is."""
    if isinstance(reply, bytes):
        return b'{"data":' + reply + b"}"
    return b'{"data":' + reply.__pydantic_serializer__.to_json(reply) + b"}"


Responder = Callable[[Msg], Awaitable[bytes]]
"""Reads one request message and returns the reply's body (JSON bytes); raises what `error_reply` answers.
It may clear the message's `reply` to answer by itself (later): then `serve` sends nothing."""


@dataclass(slots=True)
class RequestMessage:
    """The request an async endpoint is answering, as it reads it from the broker's context (`message`).

    Clearing `reply_to` takes the answer away from the endpoint: the handler then sends its reply (or
    error body) to the subject it read, itself, and whatever it returns or raises is not sent.
    """

    reply_to: str
    correlation_id: str | None
    headers: dict[str, str] | None


# The headers of every reply, as a FastStream subscriber sets them (callers read only the body).
REPLY_HEADERS = {"content-type": "application/json"}


async def serve(connection: Client, subject: str, queue: str, respond: Responder, *,
                concurrency: int | None = None, tasks: set["asyncio.Task[None]"] | None = None) -> Subscription:
    """Answer the requests on `subject` (queue group `queue`) with `respond` on a plain nats-py subscription.

    Every request gets an answer: the body `respond` returns, or `error_reply`'s for what it raised (a
    request without a reply subject gets none). `concurrency` None: one request at a time, in arrival
    order; else up to `concurrency` at once, each in a task (kept in `tasks` while it runs, so that the
    caller can cancel them on stop). Returns the subscription (`unsubscribe` to stop answering).
    """
    async def answer(msg: Msg) -> None:
        try:
            body = await respond(msg)
        except Exception as exc:
            body = error_body(exc)
        await _reply(connection, subject, msg, body)

    if concurrency is None:
        return await connection.subscribe(subject, queue=queue, cb=answer)

    limiter = asyncio.Semaphore(concurrency)
    running = tasks if tasks is not None else set()

    async def answer_released(msg: Msg) -> None:
        try:
            await answer(msg)
        finally:
            limiter.release()

    async def take(msg: Msg) -> None:
        # Waits while `concurrency` requests run: later ones stay queued in the subscription meanwhile.
        await limiter.acquire()
        task = asyncio.create_task(answer_released(msg))
        running.add(task)
        task.add_done_callback(running.discard)

    return await connection.subscribe(subject, queue=queue, cb=take)


async def _reply(connection: Client, subject: str, msg: Msg, body: bytes) -> None:
    if msg.reply:  # read after answering: an endpoint may have taken the answer away
        try:
            await connection.publish(msg.reply, body, headers=REPLY_HEADERS)
        except Exception as exc:  # the connection closed meanwhile: the caller sees its own timeout
            log.warning("rpc reply not sent", subject=subject, error=repr(exc))


def bus_connected(broker: NatsBroker) -> bool:
    """Whether the broker's NATS connection is up (not closed, not reconnecting)."""
    connection = broker._connection
    return bool(connection is not None and connection.is_connected)


class RpcClient:
    """Calls services from the gateway (or from another service) with the current correlation id.

    Sends with nats-py's own request (one shared reply subscription per connection) on the broker's
    connection, in the wire format a FastStream subscriber reads: JSON body, `content-type` and
    `correlation_id` headers, the reply subject as the message's reply-to.
    """

    def __init__(self, broker: NatsBroker, timeout: float = 5.0) -> None:
        self._broker = broker
        self._timeout = timeout

    async def call(self, operation: Operation[RequestT, ReplyT], request: RequestT, *,
                   timeout: float | None = None) -> ReplyT:
        """`operation`'s reply to `request` (a declared operation, `contracts.operations`), or
        `ServiceError`: the service's own error, `service_unavailable` (NATS or the service away,
        at once) or `service_timeout` (after `timeout` seconds, default `PORTICO_RPC_TIMEOUT`)."""
        return self._reply_of(operation, await self._ask(operation, request, timeout))

    async def call_json(self, operation: Operation[RequestT, ReplyT], request: RequestT, *,
                        timeout: float | None = None) -> bytes:
        """`call`, but the reply as JSON (the reply model as the service serialised it), for a gateway route
        that answers with it as it is: neither read into a model nor written out again. Raises as `call`."""
        data = await self._ask(operation, request, timeout)
        if data.startswith(b'{"data":{') and data.endswith(b"}"):  # how `data_body` writes it
            return data[8:-1]
        reply = self._reply_of(operation, data)
        return reply.__pydantic_serializer__.to_json(reply)

    async def _ask(self, operation: Operation[RequestT, ReplyT], request: RequestT, timeout: float | None) -> bytes:
        """The service's answer to `request`, as sent (JSON); `ServiceError` when there is none."""
        service, subject = operation.service, operation.subject
        if not isinstance(request, operation.request):
            raise TypeError(f"{operation!r} takes {operation.request.__name__}, not {type(request).__name__}")
        connection = self._broker._connection
        if connection is None or not connection.is_connected:
            # While the client reconnects a request would only wait for its timeout: say so at once.
            raise ServiceError(ErrorCode.service_unavailable, "The message bus is unreachable; try again shortly.")
        try:
            msg = await connection.request(
                subject, request.__pydantic_serializer__.to_json(request), timeout=timeout or self._timeout,
                headers=_request_headers())
        except nats.errors.NoRespondersError as exc:
            raise ServiceError(ErrorCode.service_unavailable,
                               f"The {service} service is not running; try again shortly.") from exc
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            raise ServiceError(ErrorCode.service_timeout, f"The {service} service did not answer in time.") from exc
        except nats.errors.ConnectionClosedError as exc:
            raise ServiceError(ErrorCode.service_unavailable, "Not connected to the message bus.") from exc
        return msg.data or b"{}"

    @staticmethod
    def _reply_of(operation: Operation[RequestT, ReplyT], data: bytes) -> ReplyT:
        """The reply model of an answer, or the service's error as `ServiceError`."""
        answer = _answer_of(operation.reply).validate_json(data)
        if answer.error is not None:
            try:
                code = ErrorCode(answer.error)
            except ValueError:
                code = ErrorCode.internal_error
            retry_after = answer.retry_after
            raise ServiceError(code, str(answer.message if answer.message is not None else ""),
                               retry_after=retry_after if type(retry_after) is int else None)
        if answer.data is None:
            return operation.reply.model_validate({})
        return answer.data


def _request_headers() -> dict[str, str]:
    """Headers of an RPC request: content type, correlation id and, when tracing is on, `traceparent`."""
    headers = {"content-type": "application/json", "correlation_id": current_correlation_id()}
    if tracing.ENABLED:
        tracing.inject(headers)
    return headers


class _Answer(BaseModel, Generic[ReplyT]):
    """A reply as an endpoint sends it: `{"data": ...}` or an error body (`error`, `message`, `retry_after`)."""

    data: ReplyT | None = None
    error: Any = None
    message: Any = None
    retry_after: Any = None


@functools.cache
def _answer_of(reply: type[ReplyT]) -> TypeAdapter[_Answer[ReplyT]]:
    """Reads a reply in one pass (JSON to model), instead of `json.loads` and then the model."""
    return TypeAdapter(_Answer[reply])  # type: ignore[valid-type]
