"""Request/reply messages. Subject: `rpc.<service>.<operation>`, queue group = service name.

A reply is either `{"data": <reply model>}` or an `ErrorBody` (`{"error", "message"}`).
"""

import re
from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from contracts.emails import EmailAddress
from contracts.sessions import SessionRecord


# Text no service stores: NUL (PostgreSQL refuses it in text, where SQLite would keep it) and unpaired
# UTF-16 surrogates (no UTF-8 spelling). Refused in every request, so that every database agrees.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT_ERROR = "unstorable_text"  # the pydantic error type, so that the gateway can tell it apart
# ... and pydantic's own, for an unpaired surrogate in a string it is handed.
UNSTORABLE_TEXT_ERRORS = frozenset({UNSTORABLE_TEXT_ERROR, "string_unicode"})


def _has_unstorable_text(value: object) -> bool:
    if isinstance(value, str):
        return UNSTORABLE_TEXT.search(value) is not None
    if isinstance(value, BaseModel):
        return any(_has_unstorable_text(v) for v in value.__dict__.values())
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_unstorable_text(v) for v in value)
    return False


class Request(BaseModel):
    """A request to a service. Its text never holds NUL characters or unpaired surrogates: such a request
    fails validation (`invalid_request`)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable_text(self) -> Self:
        if _has_unstorable_text(self):
            raise PydanticCustomError(UNSTORABLE_TEXT_ERROR,
                                      "text must not contain NUL characters (U+0000) or unpaired surrogates")
        return self


class Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- every service -----------------------------------------------------------------

class Ping(Request):
    """Readiness probe: answered by every service."""


class Pong(Reply):
    service: str = Field(description="Service name.", examples=["auth"])
    instance: str = Field(description="Id of the replica that answered.")
    database: Literal["ok", "error"] = Field(description="Whether the service's database answered.")
    outbox_pending: int = Field(description="Events committed but not yet published.", ge=0)


# -- auth ----------------------------------------------------------------------------

class StartEmailAccess(Request):
    """Start e-mail access to a portal: creates the customer when the e-mail is new and e-mails a code."""

    portal: str = Field(description="Portal slug.", examples=["demo"], min_length=1, max_length=100)
    email: EmailAddress = Field(description="E-mail address (normalised on validation: `contracts.emails`).")
    client_ip: str = Field(default="", max_length=64, description="For rate limits.")
    replaces_session: str | None = Field(default=None, description="Token of the browser's earlier session.")


class EmailAccessStarted(Reply):
    portal: str = Field(description="Portal slug.")
    status: Literal["pending_verification"] = Field(
        description="Same answer whether or not the e-mail had an account.")
    session_token: str | None = Field(default=None, description="An unverified session for this browser.")
    session: SessionRecord | None = Field(default=None, description="That session.")


# -- auth: sign-in and sessions ----------------------------------------------------------

class SsoLogin(Request):
    """Auto-login with an HS256 JWT signed by the company's backend with the portal's secret."""

    client_ip: str = Field(default="", max_length=64, description="For rate limits.")
    portal: str = Field(description="Portal slug.", min_length=1, max_length=100)
    token: str = Field(description="The JWT (claims: email, iat; optional exp, displayName, jti, externalId).",
                       max_length=8192)
    replaces_session: str | None = Field(default=None, description="Token of the browser's earlier session.")


class AnonymousLogin(Request):
    portal: str = Field(description="Portal slug.", min_length=1, max_length=100)


class StaffLogin(Request):
    email: str = Field(description="Staff e-mail as typed (an invalid one answers like a wrong password).",
                       max_length=320)
    password: str = Field(description="Password.", max_length=1024)
    client_ip: str = Field(default="", max_length=64, description="For the limits on failed sign-ins.")


class SessionOpened(Reply):
    session_token: str = Field(description="Goes into the HttpOnly session cookie; never logged.")
    session: SessionRecord = Field(description="The new session.")


class EndSession(Request):
    session_token: str = Field(description="Token from the session cookie.", max_length=200)


class SessionEnded(Reply):
    ended: bool = Field(description="False when there was no such session (already over).")


# -- auth: admin -------------------------------------------------------------------------

class Actor(BaseModel):
    """Who makes an admin request, as the gateway authenticated them."""

    org_id: str = Field(description="Organisation of the key or staff member.")
    role: str = Field(description="`org.admin` (API key) or a staff role.")
    principal: str = Field(description="`key:<id>` or `user:<id>`.")
    name: str | None = Field(default=None, max_length=100,
                             description="The API key's name, shown as the author of what it writes.")


class VerifyApiKey(Request):
    key: str = Field(description="The bearer key as presented.", max_length=200)
    client_ip: str = Field(default="", max_length=64, description="For the limit on wrong keys.")


class ApiKeyIdentity(Reply):
    key_id: str
    org_id: str
    role: str
    name: str | None = Field(default=None, description="The key's name, as its admin gave it.")
    expires_at: datetime | None = Field(default=None, description="When the key stops working; None: never. "
                                        "A gateway that keeps the answer stops using it then.")


class GetPortal(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)


class PortalSettings(BaseModel):
    """A portal's sign-in settings. Omitted fields are left as they are."""

    model_config = ConfigDict(extra="forbid")

    email_access_enabled: bool | None = None
    sso_enabled: bool | None = None
    custom_sign_on_enabled: bool | None = None
    custom_sign_on_redirect_uri: str | None = Field(default=None, max_length=2000)
    anonymous_enabled: bool | None = None
    session_lifetime_hours: int | None = Field(default=None, description="At least 1; default 24.")
    idle_timeout_minutes: int | None = Field(default=None, description="At least 5; default 120.")
    sso_token_max_age_minutes: int | None = Field(default=None, description="1 to 60; default 15.")
    widget_origins: list[str] | None = Field(
        default=None, description="Sites that may embed the chat widget: at most 50 origins "
        "(`scheme://host[:port]`, https, or http only for localhost and 127.0.0.1).",
        examples=[["https://shop.example.com"]])


class PortalView(Reply):
    slug: str
    name: str
    org_id: str
    kb_id: str
    anonymous_user_id: str | None
    settings: dict[str, object]
    secrets: list[dict[str, object]] = Field(description="Key ids and their state; never the secret values.")


class UpdatePortalSettings(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    settings: PortalSettings


class CreatePortal(Request):
    actor: Actor
    slug: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1, max_length=200)


class RotateSecret(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    grace_minutes: int = Field(default=60, ge=0, le=60 * 24 * 30,
                               description="How long the current secrets keep working beside the new one.")
    replaces: str | None = Field(default=None, max_length=100, description=(
        "The key id of the newest secret as the admin last saw it. When another secret was made since, "
        "the rotation is refused (`409 conflict`): a form sent twice makes one new secret, not two."))


class NewSecret(Reply):
    kid: str = Field(description="Key id: put it in the JWT header `kid`.")
    secret: str = Field(description="The secret, shown this once.")
    previous_retire_at: str | None = Field(description="When the secrets it replaces stop working (UTC, ISO).")


class RevokeSecret(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    kid: str = Field(min_length=1, max_length=40)


class SecretRevoked(Reply):
    kid: str


class KbSettings(Request):
    """Kustomer-compatible: the portal secret for a knowledge base id."""

    actor: Actor
    kb_id: str = Field(min_length=1, max_length=64)


class KbSecret(Reply):
    secret: str


# -- auth: e-mail codes --------------------------------------------------------------------

class VerifyEmailCode(Request):
    portal: str = Field(min_length=1, max_length=100)
    email: EmailAddress
    code: str = Field(max_length=20)
    client_ip: str = Field(default="", max_length=64)
    replaces_session: str | None = Field(default=None, description="Token of the browser's unverified session.")
    say_why: bool = Field(default=False, description=(
        "Refuse an expired code with `code_expired` and one used up by wrong tries with `code_tries_used` "
        "(the portal's pages tell the customer which); otherwise both are `invalid_code`, as the JSON API answers."))


# -- notifications -------------------------------------------------------------------------

class SendEmail(Request):
    """Send one e-mail now. Its text may hold a secret (an access code): it is never logged."""

    to: str = Field(max_length=320)
    subject: str = Field(max_length=200)
    text: str = Field(max_length=100_000)
    kind: str = Field(max_length=40, description="What the mail is, for logs and metrics.", examples=["access_code"])


class EmailSent(Reply):
    message_id: str


# -- auth: custom sign-on ------------------------------------------------------------------

class BeginCustomSignOn(Request):
    portal: str = Field(min_length=1, max_length=100)
    referral_url: str = Field(default="", max_length=2000, description="Where to send the browser afterwards.")
    browser_nonce: str = Field(min_length=16, max_length=100, description="Random value from this browser's cookie.")
    login_url: str = Field(max_length=2000, description="Our own login URL (becomes kustomerRedirectUri).")


class CustomSignOnRedirect(Reply):
    location: str = Field(description="The company's login page with trackingToken and kustomerRedirectUri.")


class CompleteCustomSignOn(Request):
    portal: str = Field(min_length=1, max_length=100)
    external_token: str = Field(max_length=8192)
    tracking_token: str = Field(default="", max_length=200)
    browser_nonce: str = Field(default="", max_length=100)
    client_ip: str = Field(default="", max_length=64)
    replaces_session: str | None = None


class CustomSignOnDone(Reply):
    session_token: str
    session: SessionRecord
    referral_url: str = Field(description="Same-origin path to send the browser to.")


API_KEY_ROLES = ("org.admin", "org.agent", "org.read")


class CreateApiKey(Request):
    actor: Actor
    name: str = Field(min_length=1, max_length=100)
    role: Literal["org.admin", "org.agent", "org.read"] = Field(description="What the key may do.")
    expires_at: datetime | None = Field(default=None, description="Optional expiry (UTC).")


class ApiKeyView(Reply):
    id: str
    name: str
    role: str
    prefix: str = Field(description="First characters of the key, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKeyView):
    key: str = Field(description="The key, shown this once; only its hash is stored.")


class ListApiKeys(Request):
    actor: Actor


class ApiKeyList(Reply):
    keys: list[ApiKeyView]


class RevokeApiKey(Request):
    actor: Actor
    key_id: str = Field(min_length=1, max_length=26)


class ListStaff(Request):
    actor: Actor


class StaffMember(BaseModel):
    id: str
    email: str
    display_name: str | None
    role: str | None
    disabled: bool = Field(default=False, description="A disabled account cannot sign in.")


class StaffList(Reply):
    staff: list[StaffMember]


# -- auth: accounts for other services -------------------------------------------------------

class EnsureCustomer(Request):
    """The customer account for an e-mail, created (with `UserRegistered`) when the org has none.

    Used for messages that arrive on other channels (inbound webhooks, e-mail)."""

    org_id: str = Field(max_length=26)
    portal: str = Field(min_length=1, max_length=100, description="Portal the message is for; must be the org's.")
    email: EmailAddress
    display_name: str | None = Field(default=None, max_length=200)


class CustomerAccount(Reply):
    user_id: str
    email: str = Field(description="Normalised (lower-cased) e-mail.")
    display_name: str | None
    created: bool = Field(description="The account was created by this call.")


class CreateStaff(Request):
    """A staff account; the password is generated and shown once unless one is given."""

    actor: Actor
    email: EmailAddress
    display_name: str | None = Field(default=None, max_length=200)
    role: Literal["agent", "content_manager", "admin"]
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class StaffCreated(Reply):
    member: StaffMember
    password: str | None = Field(description="The generated password, shown this once; null when one was given.")


class UpdateStaff(Request):
    """Change a staff member's role, or disable or enable their account. Omitted fields stay as they are.
    A change ends the member's open sessions at once; the org always keeps one enabled admin."""

    actor: Actor
    user_id: str = Field(min_length=1, max_length=26)
    role: Literal["agent", "content_manager", "admin"] | None = None
    disabled: bool | None = None


class StaffUpdated(Reply):
    member: StaffMember
    sessions_ended: int = Field(description="Open sessions of the member that the change ended.")


class GetPortalInfo(Request):
    """auth: what other services may know of a portal (no secrets, no admin)."""

    portal: str = Field(min_length=1, max_length=100)


class PortalInfo(Reply):
    slug: str
    name: str
    org_id: str
    kb_id: str = Field(default="", description="The portal's knowledge base id.")
    sign_in_methods: list[str] = Field(default_factory=list,
                                       description="Enabled: `sso`, `custom_sign_on`, `email`, `anonymous`.")
    widget_origins: list[str] = Field(default_factory=list, description="Sites that may embed the chat widget "
                                      "(normalised origins; public: they are in the widget's frame-ancestors).")


class ListPortals(Request):
    """auth: the portals of the actor's organisation (their names are public: any staff role may list them)."""

    actor: Actor


class PortalName(BaseModel):
    slug: str
    name: str


class PortalList(Reply):
    portals: list[PortalName] = Field(description="By name.")
