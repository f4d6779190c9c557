"""Typed request/reply over NATS: `rpc.<service>.<operation>`, queue group = service name.

Replies are `{"data": ...}` or an `ErrorBody`; the caller gets the reply model back or a
`ServiceError` whose code maps to an HTTP status.
"""

import functools
from typing import Any, Generic, Protocol

import nats.errors
from faststream.middlewares import ExceptionMiddleware
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


def error_middleware() -> ExceptionMiddleware:
    """Turns exceptions in RPC endpoints into error replies, so a caller never waits for a timeout."""
    middleware = ExceptionMiddleware()

    @middleware.add_handler(ServiceError, publish=True)
    async def _service_error(exc: ServiceError) -> dict:
        return exc.body().model_dump(mode="json")

    @middleware.add_handler(ValidationError, publish=True)
    async def _invalid(exc: ValidationError) -> dict:
        return {"error": validation_code(exc).value, "message": validation_message(exc)}

    @middleware.add_handler(Exception, publish=True)
    async def _unexpected(exc: Exception) -> dict:
        log.error("rpc endpoint failed", error=repr(exc), exc_info=exc)
        return {"error": ErrorCode.internal_error.value, "message": "The service failed to answer; see its logs."}

    return middleware


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
        answer = _answer_of(operation.reply).validate_json(msg.data or b"{}")
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
