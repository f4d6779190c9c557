"""Error codes every service and the gateway speak, with the HTTP status each maps to."""

from enum import StrEnum

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    invalid_request = "invalid_request"
    invalid_email = "invalid_email"
    unknown_portal = "unknown_portal"
    method_disabled = "method_disabled"
    not_found = "not_found"
    method_not_allowed = "method_not_allowed"
    unauthorized = "unauthorized"
    forbidden = "forbidden"
    conflict = "conflict"
    service_unavailable = "service_unavailable"
    service_timeout = "service_timeout"
    internal_error = "internal_error"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.invalid_request: 422,
    ErrorCode.invalid_email: 422,
    ErrorCode.unknown_portal: 404,
    ErrorCode.method_disabled: 403,
    ErrorCode.not_found: 404,
    ErrorCode.method_not_allowed: 405,
    ErrorCode.unauthorized: 401,
    ErrorCode.forbidden: 403,
    ErrorCode.conflict: 409,
    ErrorCode.service_unavailable: 503,
    ErrorCode.service_timeout: 504,
    ErrorCode.internal_error: 500,
}


class ErrorBody(BaseModel):
    """The body of every error, over HTTP and in an RPC reply."""

    error: ErrorCode = Field(description="Stable, machine-readable code.", examples=["unknown_portal"])
    message: str = Field(description="What went wrong and what to do about it.", examples=["No portal 'acme'."])


class ServiceError(Exception):
    """A typed failure raised by a handler; travels back to the caller as an `ErrorBody`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.code, message=self.message)
