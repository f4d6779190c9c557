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
    not_acceptable = "not_acceptable"
    unauthorized = "unauthorized"
    forbidden = "forbidden"
    conflict = "conflict"
    invalid_token = "invalid_token"
    bad_algorithm = "bad_algorithm"
    bad_signature = "bad_signature"
    unknown_key = "unknown_key"
    unsupported_header = "unsupported_header"
    missing_claim = "missing_claim"
    invalid_claim = "invalid_claim"
    token_expired = "token_expired"
    token_not_yet_valid = "token_not_yet_valid"
    token_too_old = "token_too_old"
    token_replayed = "token_replayed"
    invalid_credentials = "invalid_credentials"
    session_expired = "session_expired"
    invalid_setting = "invalid_setting"
    invalid_code = "invalid_code"
    code_expired = "code_expired"
    code_tries_used = "code_tries_used"
    invalid_state = "invalid_state"
    rate_limited = "rate_limited"
    payload_too_large = "payload_too_large"
    message_empty = "message_empty"
    message_too_long = "message_too_long"
    too_many_attachments = "too_many_attachments"
    attachment_too_large = "attachment_too_large"
    attachment_empty = "attachment_empty"
    attachment_type_not_allowed = "attachment_type_not_allowed"
    attachment_malformed = "attachment_malformed"
    conversation_closed = "conversation_closed"
    reopen_disabled = "reopen_disabled"
    reopen_window_passed = "reopen_window_passed"
    my_conversations_disabled = "my_conversations_disabled"
    wrong_portal = "wrong_portal"
    cross_site_request = "cross_site_request"
    idempotency_key_reused = "idempotency_key_reused"
    idempotency_in_progress = "idempotency_in_progress"
    invalid_signature = "invalid_signature"
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
    ErrorCode.not_acceptable: 406,
    ErrorCode.unauthorized: 401,
    ErrorCode.forbidden: 403,
    ErrorCode.conflict: 409,
    ErrorCode.invalid_token: 401,
    ErrorCode.bad_algorithm: 401,
    ErrorCode.bad_signature: 401,
    ErrorCode.unknown_key: 401,
    ErrorCode.unsupported_header: 401,
    ErrorCode.missing_claim: 401,
    ErrorCode.invalid_claim: 401,
    ErrorCode.token_expired: 401,
    ErrorCode.token_not_yet_valid: 401,
    ErrorCode.token_too_old: 401,
    ErrorCode.token_replayed: 401,
    ErrorCode.invalid_credentials: 401,
    ErrorCode.session_expired: 401,
    ErrorCode.invalid_setting: 422,
    ErrorCode.invalid_code: 401,
    ErrorCode.code_expired: 401,
    ErrorCode.code_tries_used: 401,
    ErrorCode.invalid_state: 400,
    ErrorCode.rate_limited: 429,
    ErrorCode.payload_too_large: 413,
    ErrorCode.message_empty: 422,
    ErrorCode.message_too_long: 422,
    ErrorCode.too_many_attachments: 422,
    ErrorCode.attachment_too_large: 413,
    ErrorCode.attachment_empty: 422,
    ErrorCode.attachment_type_not_allowed: 415,
    ErrorCode.attachment_malformed: 422,
    ErrorCode.conversation_closed: 409,
    ErrorCode.reopen_disabled: 403,
    ErrorCode.reopen_window_passed: 403,
    ErrorCode.my_conversations_disabled: 403,
    ErrorCode.wrong_portal: 403,
    ErrorCode.cross_site_request: 403,
    ErrorCode.idempotency_key_reused: 422,
    ErrorCode.idempotency_in_progress: 409,
    ErrorCode.invalid_signature: 401,
    ErrorCode.service_unavailable: 503,
    ErrorCode.service_timeout: 504,
    ErrorCode.internal_error: 500,
}


class ErrorBody(BaseModel):
    """The body of every error, over HTTP and in an RPC reply."""

    error: ErrorCode = Field(description="Stable, machine-readable code.", examples=["unknown_portal"])
    message: str = Field(description="What went wrong and what to do about it.", examples=["No portal 'acme'."])
    retry_after: int | None = Field(default=None, ge=0, exclude_if=lambda v: v is None, examples=[60],
                                    description="With `rate_limited`: seconds to wait before trying again "
                                    "(the HTTP `Retry-After`); absent otherwise.")


class ServiceError(Exception):
    """A typed failure raised by a handler; travels back to the caller as an `ErrorBody`."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retry_after = retry_after  # seconds, with `rate_limited`

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.code, message=self.message, retry_after=self.retry_after)
