"""Every error leaves the gateway as `{"error": code, "message": text}` with the matching status."""

import nats.errors
import nats.js.errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import UNSTORABLE_TEXT_ERRORS
from services.runtime.logging import get_logger
from services.runtime.rpc import validation_code, validation_message

log = get_logger("portico.gateway")

_STATUS_CODES = {404: ErrorCode.not_found, 405: ErrorCode.method_not_allowed, 401: ErrorCode.unauthorized,
                 403: ErrorCode.forbidden}
# For a `rate_limited` error that does not say how long (every auth limit does, in `retry_after`).
DEFAULT_RETRY_AFTER = 60
# Seconds a client should wait after `service_unavailable` (NATS or a service unreachable); the
# gateway reconnects every half second, a restarted service answers within seconds.
UNAVAILABLE_RETRY_AFTER = 5
# NATS failures that mean "the bus is not there right now" (not a missing key or object).
BUS_UNAVAILABLE: tuple[type[Exception], ...] = (
    nats.errors.TimeoutError, nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError, nats.errors.NoServersError, nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError, nats.errors.UnexpectedEOF, nats.js.errors.ServiceUnavailableError)


def error_response(code: ErrorCode, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": code.value, "message": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    from services.gateway.web.pages import is_page, page_error

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        if is_page(request):
            return await page_error(request, exc)
        response: Response = error_response(exc.code, exc.message, exc.status)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        elif exc.code is ErrorCode.rate_limited:
            response.headers["Retry-After"] = str(DEFAULT_RETRY_AFTER)
        elif exc.code is ErrorCode.service_unavailable:
            response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return response

    async def _bus_failed(request: Request, exc: Exception) -> Response:
        # The message bus went away in the middle of a request (a KV read, a file upload, ...).
        log.warning("message bus unavailable", error=repr(exc))
        if is_page(request):
            return await page_error(request, ServiceError(ErrorCode.service_unavailable, "unreachable",
                                                          retry_after=UNAVAILABLE_RETRY_AFTER))
        response = error_response(ErrorCode.service_unavailable,
                                  "The message bus is unreachable; try again shortly.", 503)
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return response

    for bus_error in BUS_UNAVAILABLE:
        app.add_exception_handler(bus_error, _bus_failed)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if is_page(request):
            return await page_error(request, ServiceError(ErrorCode.invalid_request, validation_message(exc)))
        if any(error.get("type") == "json_invalid" for error in exc.errors()[:5]):
            return error_response(ErrorCode.invalid_request, "The request body is not valid JSON.", 422)
        # The whole path (`body.email`, `query.limit`): a field may be called `body` itself.
        return error_response(validation_code(exc), validation_message(exc) or "Invalid request.", 422)

    @app.exception_handler(ValidationError)
    async def _invalid_model(request: Request, exc: ValidationError) -> JSONResponse:
        # A service request built from what the client sent: an address that cannot be normalised
        # (`contracts.emails.EmailAddress`) is the client's error; any other failure is ours.
        if validation_code(exc) is ErrorCode.invalid_email:
            return error_response(ErrorCode.invalid_email, validation_message(exc), 422)
        if any(error.get("type") in UNSTORABLE_TEXT_ERRORS for error in exc.errors()):  # NUL in a query, ...
            return error_response(ErrorCode.invalid_request, validation_message(exc), 422)
        return await _unexpected(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, ErrorCode.invalid_request)
        if is_page(request) and exc.status_code in (404, 405):
            return await page_error(request, ServiceError(code, "No such page."))
        message = exc.detail if isinstance(exc.detail, str) else code.value
        if exc.status_code == 404 and message == "Not Found":
            message = "No such resource."
        return error_response(code, message, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("request failed", error=repr(exc), exc_info=exc)
        if is_page(request):
            try:
                return await page_error(request, ServiceError(ErrorCode.internal_error, "internal error"))
            except Exception:
                pass
        return error_response(ErrorCode.internal_error, "Something went wrong on our side; see the gateway log.", 500)
