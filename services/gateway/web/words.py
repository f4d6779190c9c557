"""What a refusal means, in words a customer understands, in their language.

The services' error codes are stable (`contracts.errors.ErrorCode`); their messages are written for
developers. Pages show these sentences instead, and fall back to the service's message for a code
that has none here. `_()` only marks a string for extraction; `say()` translates it at render time.
"""

import re

from starlette.requests import Request

from contracts.errors import ErrorCode, ServiceError
from services.gateway.web import i18n
from services.gateway.web.rendering import gettext


def _(message: str) -> str:
    return message


# Every way a company's sign-in token can be refused: the customer can only try again.
_SIGN_ON_FAILED = _("Signing in through your company's page did not work. Please try again.")

WORDS: dict[ErrorCode, str] = {
    ErrorCode.unknown_portal: _("There is no such help centre."),
    ErrorCode.not_found: _("We could not find that page. It may have been removed, or you may not have access."),
    ErrorCode.forbidden: _("You do not have access to this page."),
    ErrorCode.wrong_portal: _("You are signed in to another help centre. Sign out and sign in here."),
    ErrorCode.unauthorized: _("Please sign in to continue."),
    ErrorCode.session_expired: _("Your session has ended. Please sign in again."),
    ErrorCode.method_disabled: _("This way of signing in is not available here."),
    ErrorCode.invalid_email: _("Please enter a valid e-mail address, like name@example.com."),
    ErrorCode.invalid_code: _("That code is not right. Check the code in the newest e-mail from us, or ask for a new one."),
    ErrorCode.code_expired: _("That code has expired. Please ask for a new one."),
    ErrorCode.code_tries_used: _("That code was entered wrongly too many times and no longer works. Please ask for a new one."),
    ErrorCode.invalid_credentials: _("The e-mail address or the password is not right."),
    ErrorCode.invalid_state: _("This sign-in was started in another browser, or took too long. Please sign in again."),
    ErrorCode.rate_limited: _("Too many tries. Please wait a little before trying again."),
    ErrorCode.invalid_token: _SIGN_ON_FAILED,
    ErrorCode.token_expired: _("The sign-in took too long and expired. Please try again."),
    ErrorCode.token_replayed: _("That sign-in link was already used. Please sign in again."),
    ErrorCode.bad_algorithm: _SIGN_ON_FAILED,
    ErrorCode.bad_signature: _SIGN_ON_FAILED,
    ErrorCode.unknown_key: _SIGN_ON_FAILED,
    ErrorCode.unsupported_header: _SIGN_ON_FAILED,
    ErrorCode.missing_claim: _SIGN_ON_FAILED,
    ErrorCode.invalid_claim: _SIGN_ON_FAILED,
    ErrorCode.token_not_yet_valid: _SIGN_ON_FAILED,
    ErrorCode.token_too_old: _("The sign-in took too long and expired. Please try again."),
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
    ErrorCode.invalid_request: _("Something in what you sent is not valid. Please check it and try again."),
    ErrorCode.method_not_allowed: _("This page cannot be used that way."),
    ErrorCode.not_acceptable: _("This address cannot answer in the form your browser asked for."),
    ErrorCode.conflict: _("This clashes with something that exists already or was changed in the meantime. Please reload the page and try again."),
    ErrorCode.idempotency_key_reused: _("This form was already sent with other content. Please reload the page and send it again."),
    ErrorCode.idempotency_in_progress: _("This is being sent already. Please wait a moment."),
    ErrorCode.invalid_signature: _("The signature of what was sent is not valid."),
}


def say(request: Request, error: ServiceError) -> str:
    """The customer's words for `error`, translated; for `rate_limited` with a wait, when to try again.

    File and length refusals keep the service's detail (which file, how many characters) after the
    sentence, since that detail is what the customer needs to fix it (see `detail`)."""
    words = WORDS.get(error.code)
    if words is None:
        return error.message
    text = gettext(request, words)
    if error.code is ErrorCode.rate_limited and error.retry_after:
        text += " " + gettext(request, "Try again in %(wait)s.", wait=_wait(request, error.retry_after))
    if error.code in DETAILED:
        text = " ".join(filter(None, (text, detail(request, error))))
    return text


DETAILED = frozenset({ErrorCode.message_too_long, ErrorCode.too_many_attachments, ErrorCode.attachment_too_large,
                      ErrorCode.attachment_empty, ErrorCode.attachment_type_not_allowed,
                      ErrorCode.attachment_malformed})


# The services write a refusal's detail in English. Another language says it again from its parts (file
# name, counts, sizes); a detail of another shape is left out there, the sentence before it still says
# what to fix.
_COUNTS = re.compile(r"(?:The message has )?([\d,]+) (?:characters|files attached); at most ([\d,]+) are allowed\.")
_TOO_LARGE = re.compile(r'"?(.+?)"? is ([\d,]+) bytes; at most ([\d,]+) are allowed\.')
_FILE_NAME = re.compile(r'"(.+?)" .*|(.+?)(?: is empty\.|: this type is not allowed\.)')
_DETAIL_WORDS = {
    ErrorCode.message_too_long: _("The message has %(count)s characters; at most %(max)s are allowed."),
    ErrorCode.too_many_attachments: _("%(count)s files are attached; at most %(max)s are allowed."),
    ErrorCode.attachment_too_large: _("%(name)s is %(size)s; at most %(max)s are allowed."),
}


def detail(request: Request, error: ServiceError) -> str:
    """The detail of a file or length refusal in the request's language: the service's own sentence on an
    English page, else the same facts in the page's language, or "" when its shape is not known here."""
    language = i18n.choose_language(request)
    if language == i18n.DEFAULT_LANGUAGE:
        return error.message
    fmt = i18n.Formats(language, i18n.UTC)
    if error.code in (ErrorCode.message_too_long, ErrorCode.too_many_attachments) \
            and (counts := _COUNTS.fullmatch(error.message)):
        count, most = (fmt.number(int(n.replace(",", ""))) for n in counts.groups())
        return gettext(request, _DETAIL_WORDS[error.code], count=count, max=most)
    if error.code is ErrorCode.attachment_too_large and (large := _TOO_LARGE.fullmatch(error.message)):
        size, most = (int(n.replace(",", "")) for n in large.groups()[1:])
        # "3 MB; at most 3 MB" says nothing: where the rounded sizes agree, the bytes.
        exact = fmt.size(size) == fmt.size(most)
        shown = [f"{fmt.number(n)} B" if exact else fmt.size(n) for n in (size, most)]
        return gettext(request, _DETAIL_WORDS[error.code], name=large.group(1), size=shown[0], max=shown[1])
    if named := _FILE_NAME.fullmatch(error.message):
        return gettext(request, "File: %(name)s", name=named.group(1) or named.group(2))
    return ""


def _wait(request: Request, seconds: int) -> str:
    """`seconds` as the customer reads a wait: seconds under a minute, else whole minutes (rounded up)."""
    catalogue = i18n.translations(i18n.choose_language(request))
    if seconds < 60:
        return catalogue.ngettext("%(num)s second", "%(num)s seconds", seconds) % {"num": seconds}
    minutes = (seconds + 59) // 60
    return catalogue.ngettext("%(num)s minute", "%(num)s minutes", minutes) % {"num": minutes}
