"""Portal sign-in, staff sign-in, who am I, logout."""

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
from contracts.sessions import SESSION_COOKIE
from services.gateway.auth import (
    CurrentSession,
    SessionView,
    clear_session_cookie,
    cookie_secure,
    set_session_cookie,
)
from services.gateway.deps import PortalSlug, Rpc

router = APIRouter(tags=["sign-in"])


class EmailAccessBody(BaseModel):
    email: str = Field(description="The customer's e-mail address.", examples=["ana@example.com"], max_length=320)


class SsoBody(BaseModel):
    token: str = Field(description="HS256 JWT signed with the portal's secret.", max_length=8192)


class StaffBody(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


def _opened(request: Request, response: Response, opened: SessionOpened) -> SessionView:
    set_session_cookie(response, opened.session_token, opened.session, cookie_secure(request))
    return SessionView.of(opened.session)


class EmailAccessAnswer(BaseModel):
    portal: str
    status: str = Field(description="`pending_verification`, whether or not the e-mail had an account.")


class VerifyBody(BaseModel):
    email: str = Field(max_length=320)
    code: str = Field(max_length=20, description="The 6-digit code from the e-mail.")


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/api/v1/portals/{portal}/session/email", status_code=202, response_model=EmailAccessAnswer,
             summary="Start e-mail access: the account is created if needed and a one-time code e-mailed")
async def start_email_access(body: EmailAccessBody, request: Request, response: Response, rpc: Rpc,
                             portal: str = PortalSlug) -> EmailAccessAnswer:
    started = await rpc.call(operations.auth.start_email_access, StartEmailAccess(
        portal=portal, email=body.email, client_ip=_client_ip(request),
        replaces_session=request.cookies.get(SESSION_COOKIE)))
    if started.session_token and started.session:
        set_session_cookie(response, started.session_token, started.session, cookie_secure(request))
    return EmailAccessAnswer(portal=started.portal, status=started.status)


@router.post("/api/v1/portals/{portal}/session/email/verify", response_model=SessionView,
             summary="Sign in with the e-mailed code (single use, 10 minutes, 5 tries)")
async def verify_email_code(body: VerifyBody, request: Request, response: Response, rpc: Rpc,
                            portal: str = PortalSlug) -> SessionView:
    opened = await rpc.call(operations.auth.verify_email_code, VerifyEmailCode(
        portal=portal, email=body.email, code=body.code, client_ip=_client_ip(request),
        replaces_session=request.cookies.get(SESSION_COOKIE)))
    return _opened(request, response, opened)


@router.post("/api/v1/portals/{portal}/session/sso", response_model=SessionView,
             summary="Auto-login with a JWT signed by the portal's secret (chat widget `sso.login(token)`)")
async def sso_login(body: SsoBody, request: Request, response: Response, rpc: Rpc,
                    portal: str = PortalSlug) -> SessionView:
    opened = await rpc.call(operations.auth.sso_login, SsoLogin(
        portal=portal, token=body.token, client_ip=_client_ip(request),
        replaces_session=request.cookies.get(SESSION_COOKIE)))
    return _opened(request, response, opened)


@router.post("/api/v1/portals/{portal}/session/anonymous", response_model=SessionView,
             summary="Anonymous session, where the portal allows requests without login")
async def anonymous_login(request: Request, response: Response, rpc: Rpc, portal: str = PortalSlug) -> SessionView:
    opened = await rpc.call(operations.auth.anonymous_login, AnonymousLogin(portal=portal))
    return _opened(request, response, opened)


@router.post("/api/v1/staff/session", response_model=SessionView, summary="Staff sign-in with e-mail and password")
async def staff_login(body: StaffBody, request: Request, response: Response, rpc: Rpc) -> SessionView:
    opened = await rpc.call(operations.auth.staff_login, StaffLogin(email=body.email, password=body.password,
                                                              client_ip=_client_ip(request)))
    return _opened(request, response, opened)


@router.get("/api/v1/session", response_model=SessionView, summary="Who am I, how I signed in, when it ends")
async def who_am_i(current: CurrentSession) -> SessionView:
    return SessionView.of(current[1])


@router.delete("/api/v1/session", response_model=SessionEnded, summary="Log out (every gateway, at once)")
async def logout(current: CurrentSession, request: Request, response: Response, rpc: Rpc) -> SessionEnded:
    ended = await rpc.call(operations.auth.logout, EndSession(session_token=current[0]))
    clear_session_cookie(response, cookie_secure(request))
    return ended
