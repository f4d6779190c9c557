"""What a refusal means, in words a customer understands, in their language.

The services' error codes are stable (`contracts.errors.ErrorCode`); their messages are written for
developers. Pages show these sentences instead, and fall back to the service's message for a code
that has none here. `_()` only marks a string for extraction; `say()` translates it at render time.
"""

from starlette.requests import Request

from contracts.errors import ErrorCode, ServiceError
from services.gateway.web.rendering import gettext


def _(message: str) -> str:
    return message


WORDS: dict[ErrorCode, str] = {
    ErrorCode.unknown_portal: _("There is no such help centre."),
    ErrorCode.not_found: _("We could not find that page. It may have been removed, or you may not have access."),
    ErrorCode.forbidden: _("You do not have access to this page."),
    ErrorCode.wrong_portal: _("You are signed in to another help centre. Sign out and sign in here."),
    ErrorCode.unauthorized: _("Please sign in to continue."),
    ErrorCode.session_expired: _("Your session has ended. Please sign in again."),
    ErrorCode.method_disabled: _("This way of signing in is not available here."),
    ErrorCode.invalid_email: _("Please enter a valid e-mail address, like name@example.com."),
    ErrorCode.invalid_code: _("That code is not right, or it has expired. Check the newest e-mail from us, or ask for a new code."),
    ErrorCode.rate_limited: _("Too many tries. Please wait a little before trying again."),
    ErrorCode.invalid_token: _("Signing in through your company's page did not work. Please try again."),
    ErrorCode.token_expired: _("The sign-in took too long and expired. Please try again."),
    ErrorCode.token_replayed: _("That sign-in link was already used. Please sign in again."),
    ErrorCode.message_empty: _("Please write a message."),
    ErrorCode.message_too_long: _("Your message is too long."),
    ErrorCode.too_many_attachments: _("Too many files are attached."),
    ErrorCode.attachment_too_large: _("A file is larger than allowed."),
    ErrorCode.attachment_empty: _("A file is empty."),
    ErrorCode.attachment_type_not_allowed: _("A file is of a type we cannot accept."),
    ErrorCode.attachment_malformed: _("A file is damaged or could not be read."),
    ErrorCode.payload_too_large: _("What you sent is too large."),
    ErrorCode.conversation_closed: _("This conversation is closed."),
    ErrorCode.reopen_disabled: _("Closed conversations cannot be reopened here. Please start a new conversation."),
    ErrorCode.reopen_window_passed: _("This conversation was closed too long ago to reopen. Please start a new conversation."),
    ErrorCode.my_conversations_disabled: _("Conversations are not shown in this help centre."),
    ErrorCode.cross_site_request: _("This form was sent from another site and was refused."),
    ErrorCode.service_unavailable: _("We cannot reach part of our service right now. Please try again in a moment."),
    ErrorCode.service_timeout: _("This took too long. Please try again in a moment."),
    ErrorCode.internal_error: _("Something went wrong on our side. Please try again later."),
}


def say(request: Request, error: ServiceError) -> str:
    """The customer's words for `error`, translated; for `rate_limited` with a wait, when to try again.

    File and length refusals keep the service's detail (which file, how many characters) after the
    sentence, since that detail is what the customer needs to fix it."""
    words = WORDS.get(error.code)
    if words is None:
        return error.message
    text = gettext(request, words)
    if error.code is ErrorCode.rate_limited and error.retry_after:
        text += " " + gettext(request, "Try again in %(minutes)s.", minutes=_wait(request, error.retry_after))
    if error.code in DETAILED:
        text += " " + error.message
    return text


DETAILED = frozenset({ErrorCode.message_too_long, ErrorCode.too_many_attachments, ErrorCode.attachment_too_large,
                      ErrorCode.attachment_empty, ErrorCode.attachment_type_not_allowed,
                      ErrorCode.attachment_malformed})


def _wait(request: Request, seconds: int) -> str:
    if seconds < 60:
        return gettext(request, "%(n)s seconds", n=seconds)
    minutes = (seconds + 59) // 60
    return gettext(request, "1 minute") if minutes == 1 else gettext(request, "%(n)s minutes", n=minutes)
