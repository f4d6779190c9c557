"""Portal sign-in, staff sign-in, who am I, logout.

A portal sign-in sets the session cookie; with `"bearer": true` in its body it sets no cookie and answers
with `session_token` instead, for `Authorization: Bearer <session_token>` (the chat widget's frame, where
third-party cookies are blocked: `services.gateway.web.widget`). The browser's earlier session (bearer,
else cookie) is the one the sign-in replaces (identity linking).
"""

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from contracts import operations
from contracts.rpc import (
    AnonymousLogin,
    EndSession,
    SessionEnded,
    SessionOpened,
    SsoLogin,
    StaffLogin,
    StartEmailAccess,
    VerifyEmailCode,
)
from contracts.sessions import SESSION_COOKIE, session_key
from services.gateway.auth import (
    SessionView,
    bearer_session_token,
    clear_session_cookie,
    cookie_secure,
    require_session,
    set_session_cookie,
)
from services.gateway.deps import PortalSlug, Rpc
from services.gateway.web.widget import history

router = APIRouter(tags=["sign-in"])


BEARER_FIELD = Field(default=False, description="Answer with `session_token` (for `Authorization: Bearer`) "
                                                 "instead of setting the session cookie.")


class EmailAccessBody(BaseModel):
    email: str = Field(description="The customer's e-mail address.", examples=["ana@example.com"], max_length=320)
    bearer: bool = BEARER_FIELD


class SsoBody(BaseModel):
    token: str = Field(description="HS256 JWT signed with the portal's secret.", max_length=8192)
    bearer: bool = BEARER_FIELD


class AnonymousBody(BaseModel):
    bearer: bool = BEARER_FIELD


class StaffBody(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class OpenedSession(SessionView):
    """A portal sign-in's answer: the session, and its token when the request asked for `bearer`."""

    session_token: str | None = Field(default=None, description="Only with `bearer: true` (else absent): the "
                                      "session token, for `Authorization: Bearer`. Keep it where no other site's "
                                      "script can read it.")


def _opened(request: Request, response: Response, opened: SessionOpened, bearer: bool = False) -> OpenedSession:
    if bearer:
        return OpenedSession(**SessionView.of(opened.session).model_dump(), session_token=opened.session_token)
    set_session_cookie(response, opened.session_token, opened.session, cookie_secure(request))
    return OpenedSession.of(opened.session)


def _earlier_session(request: Request) -> str | None:
    """The browser's session a sign-in replaces: its bearer session token, else its cookie."""
    return bearer_session_token(request) or request.cookies.get(SESSION_COOKIE)


class EmailAccessAnswer(BaseModel):
    portal: str
    status: str = Field(description="`pending_verification`, whether or not the e-mail had an account.")
    session_token: str | None = Field(default=None, description="Only with `bearer: true` (else absent): the "
                                      "browser's unverified session, for `Authorization: Bearer`.")


class VerifyBody(BaseModel):
    email: str = Field(max_length=320)
    code: str = Field(max_length=20, description="The 6-digit code from the e-mail.")
    bearer: bool = BEARER_FIELD


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/api/v1/portals/{portal}/session/email", status_code=202, response_model=EmailAccessAnswer,
             response_model_exclude_unset=True,
             summary="Start e-mail access: the account is created if needed and a one-time code e-mailed")
async def start_email_access(body: EmailAccessBody, request: Request, response: Response, rpc: Rpc,
                             portal: str = PortalSlug) -> EmailAccessAnswer:
    started = await rpc.call(operations.auth.start_email_access, StartEmailAccess(
        portal=portal, email=body.email, client_ip=_client_ip(request), replaces_session=_earlier_session(request)))
    if body.bearer:
        return EmailAccessAnswer(portal=started.portal, status=started.status, session_token=started.session_token)
    if started.session_token and started.session:
        set_session_cookie(response, started.session_token, started.session, cookie_secure(request))
    return EmailAccessAnswer(portal=started.portal, status=started.status)


@router.post("/api/v1/portals/{portal}/session/email/verify", response_model=OpenedSession,
             response_model_exclude_unset=True,
             summary="Sign in with the e-mailed code (single use, 10 minutes, 5 tries)")
async def verify_email_code(body: VerifyBody, request: Request, response: Response, rpc: Rpc,
                            portal: str = PortalSlug) -> OpenedSession:
    earlier = _earlier_session(request)
    created = await history.created_by(request, rpc, portal, earlier)
    opened = await rpc.call(operations.auth.verify_email_code, VerifyEmailCode(
        portal=portal, email=body.email, code=body.code, client_ip=_client_ip(request), replaces_session=earlier))
    await history.wait_until_linked(rpc, opened, created)
    return _opened(request, response, opened, body.bearer)


@router.post("/api/v1/portals/{portal}/session/sso", response_model=OpenedSession,
             response_model_exclude_unset=True,
             summary="Auto-login with a JWT signed by the portal's secret (chat widget `sso.login(token)`)")
async def sso_login(body: SsoBody, request: Request, response: Response, rpc: Rpc,
                    portal: str = PortalSlug) -> OpenedSession:
    earlier = _earlier_session(request)
    created = await history.created_by(request, rpc, portal, earlier)
    opened = await rpc.call(operations.auth.sso_login, SsoLogin(
        portal=portal, token=body.token, client_ip=_client_ip(request), replaces_session=earlier))
    await history.wait_until_linked(rpc, opened, created)
    return _opened(request, response, opened, body.bearer)


@router.post("/api/v1/portals/{portal}/session/anonymous", response_model=OpenedSession,
             response_model_exclude_unset=True,
             summary="Anonymous session, where the portal allows requests without login")
async def anonymous_login(request: Request, response: Response, rpc: Rpc, portal: str = PortalSlug,
                          body: AnonymousBody | None = None) -> OpenedSession:
    opened = await rpc.call(operations.auth.anonymous_login, AnonymousLogin(portal=portal))
    return _opened(request, response, opened, bool(body and body.bearer))


@router.post("/api/v1/staff/session", response_model=SessionView, summary="Staff sign-in with e-mail and password")
async def staff_login(body: StaffBody, request: Request, response: Response, rpc: Rpc) -> SessionView:
    opened = await rpc.call(operations.auth.staff_login, StaffLogin(email=body.email, password=body.password,
                                                              client_ip=_client_ip(request)))
    return _opened(request, response, opened)


@router.get("/api/v1/session", response_model=SessionView, summary="Who am I, how I signed in, when it ends")
async def who_am_i(request: Request) -> SessionView:
    _, record = await require_session(request)  # called, not a dependency: one resolution less per request
    return SessionView.of(record)


@router.delete("/api/v1/session", response_model=SessionEnded, summary="Log out (every gateway, at once)")
async def logout(request: Request, response: Response) -> SessionEnded:
    token, _ = await require_session(request)
    ended = await request.app.state.rpc.call(operations.auth.logout, EndSession(session_token=token))
    request.app.state.session_cache.ended(session_key(token))  # here too, should auth's announcement be lost
    if bearer_session_token(request) is None:  # a bearer session's logout leaves the cookie's session alone
        clear_session_cookie(response, cookie_secure(request))
    return ended
