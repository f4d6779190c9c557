"""Every error leaves the gateway as `{"error": code, "message": text}` with the matching status."""

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.errors import ErrorCode, ServiceError
from services.runtime.logging import get_logger

log = get_logger("portico.gateway")

_STATUS_CODES = {404: ErrorCode.not_found, 405: ErrorCode.method_not_allowed, 401: ErrorCode.unauthorized,
                 403: ErrorCode.forbidden}


def error_response(code: ErrorCode, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": code.value, "message": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        response = error_response(exc.code, exc.message, exc.status)
        if exc.code is ErrorCode.rate_limited:
            seconds = re.search(r"in (\d+) s", exc.message)
            response.headers["Retry-After"] = seconds.group(1) if seconds else "60"
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors()[:5]:
            if error.get("type") == "json_invalid":
                return error_response(ErrorCode.invalid_request, "The request body is not valid JSON.", 422)
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return error_response(ErrorCode.invalid_request, "; ".join(parts) or "Invalid request.", 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, ErrorCode.invalid_request)
        message = exc.detail if isinstance(exc.detail, str) else code.value
        if exc.status_code == 404 and message == "Not Found":
            message = "No such resource."
        return error_response(code, message, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", error=repr(exc), exc_info=exc)
        return error_response(ErrorCode.internal_error, "Something went wrong on our side; see the gateway log.", 500)
