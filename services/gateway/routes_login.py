"""`GET /portals/{portal}/login`: the login page, the redirect to a custom sign-on page, and its return."""

import html
import secrets

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import (
    BeginCustomSignOn,
    CompleteCustomSignOn,
)
from contracts.sessions import SESSION_COOKIE
from services.gateway.auth import cookie_secure, set_session_cookie
from services.gateway.deps import Rpc

router = APIRouter(tags=["sign-in"])

NONCE_COOKIE = "portico_sign_on"


@router.get("/portals/{portal}/login", response_class=Response,
            summary="Login page; with custom sign-on, a redirect to the company's login page, and its return")
async def login(request: Request, rpc: Rpc, portal: str = Path(min_length=1, max_length=100),
                external_token: str | None = Query(default=None, alias="externalToken", max_length=8192),
                referral_url: str = Query(default="", alias="referralUrl", max_length=2000),
                tracking_token: str = Query(default="", alias="trackingToken", max_length=200)) -> Response:
    secure = cookie_secure(request)
    login_url = f"{request.app.state.settings.resolved_public_url}/portals/{portal}/login"
    if external_token is not None:
        done = await rpc.call(operations.auth.complete_custom_sign_on, CompleteCustomSignOn(
            portal=portal, external_token=external_token, tracking_token=tracking_token,
            browser_nonce=request.cookies.get(NONCE_COOKIE, ""),
            client_ip=request.client.host if request.client else "",
            replaces_session=request.cookies.get(SESSION_COOKIE)))
        response = RedirectResponse(done.referral_url, status_code=303)
        set_session_cookie(response, done.session_token, done.session, secure)
        response.delete_cookie(NONCE_COOKIE, path=f"/portals/{portal}/login")
        return response
    nonce = secrets.token_urlsafe(24)
    try:
        redirect = await rpc.call(operations.auth.begin_custom_sign_on, BeginCustomSignOn(
            portal=portal, referral_url=referral_url, browser_nonce=nonce, login_url=login_url))
    except ServiceError as exc:
        if exc.code is not ErrorCode.method_disabled:
            raise
        return HTMLResponse(_login_page(portal))
    response = RedirectResponse(redirect.location, status_code=303)
    response.set_cookie(NONCE_COOKIE, nonce, max_age=15 * 60, httponly=True, secure=secure, samesite="lax",
                        path=f"/portals/{portal}/login")
    return response


def _login_page(portal: str) -> str:
    name = html.escape(portal)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Sign in · {name}</title></head>"
            f"<body><h1>Sign in to {name}</h1>"
            f"<p>Sign in with your e-mail: <code>POST /api/v1/portals/{name}/session/email</code>.</p>"
            "</body></html>")
