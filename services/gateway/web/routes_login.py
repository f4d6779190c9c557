"""The customer portal's sign-in pages, and signing out.

| page | what |
| --- | --- |
| `GET /portals/{portal}/login?next=` | "Log in": the methods the portal has on; custom sign-on's start and return |
| `POST /portals/{portal}/login` | the e-mail step: a code is sent (with custom sign-on on: the choice first) |
| `GET`/`POST /portals/{portal}/login/code` | "we sent a code to …" and signing in with it |
| `POST /portals/{portal}/login/code/new` | a new code |
| `POST /portals/{portal}/login/anonymous` | continue anonymously |
| `GET`/`POST /portals/{portal}/login/staff` | staff sign-in (agents, content managers, admins browse the portal) |
| `POST /portals/{portal}/logout` | sign out (signed out already: the same) |

Each calls the operation its JSON route calls (`routes_session.py`) and sets the session cookie the same way.

- **The e-mail step chooses on the portal's switches only**, never on the address: every address gets the same
  next step (the code is sent, or, where custom sign-on is on, the same two buttons), so the step tells
  nothing of whether an account exists. Without e-mail access the company's button is offered at once.
- **Custom sign-on**: `GET /login?referralUrl=<path>` starts it (the company's button, and Kustomer-style
  links); so does `GET /login` when it is the portal's only method with a button (`sso` has none). The
  return (`?externalToken=&referralUrl=&trackingToken=`) is the public contract of DESIGN.md. The auth
  service accepts only a path on this site as the referral (`custom_sign_on.safe_referral`), so the page
  passes `next` as a path.
- **Signed in already** (a customer or staff; not anonymous, not waiting for a code): `/login` says so,
  with a way on to `next` and a sign-out button, rather than sending them on unasked.
- **Refusals** show next to the field in the customer's words. On `GET /login`, a client that does not ask
  for HTML (scripts, the API's users) gets the JSON error body, as before the pages existed.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import (
    AnonymousLogin,
    BeginCustomSignOn,
    CompleteCustomSignOn,
    EndSession,
    SessionOpened,
    StaffLogin,
    StartEmailAccess,
    VerifyEmailCode,
)
from contracts.sessions import SESSION_COOKIE, SessionRecord
from services.gateway.auth import clear_session_cookie, cookie_secure, set_session_cookie
from services.gateway.errors import error_response
from services.gateway.web.pages import page_portal, portal_page, safe_next, see_other
from services.gateway.web.portal import Portal, Visitor
from services.gateway.web.rendering import gettext
from services.gateway.web.words import say

router = APIRouter(tags=["sign-in"])

NONCE_COOKIE = "portico_sign_on"
Slug = Path(min_length=1, max_length=100)
NextField = Form(default="", alias="next", max_length=2000)


@dataclass(frozen=True)
class Problem:
    """A refusal as a form shows it: the words, the field they belong to ("" for the whole form), the
    status, and for `rate_limited` the moment the customer may try again."""

    message: str
    field: str = ""
    status: int = 400
    retry_at: datetime | None = None

    @property
    def wait_seconds(self) -> int:
        """Seconds until `retry_at` (0 without one); `login.js` offers "Send a new code" again then."""
        return max(0, int((self.retry_at - datetime.now(UTC)).total_seconds()) + 1) if self.retry_at else 0


def problem(request: Request, error: ServiceError, field: str = "") -> Problem:
    retry_at = datetime.now(UTC) + timedelta(seconds=error.retry_after) if error.retry_after else None
    return Problem(say(request, error), field, error.status, retry_at)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _target(slug: str, value: str | None) -> str:
    """Where to go after signing in: `pages.safe_next`, and never back to a sign-in page."""
    target = safe_next(slug, value)
    return f"/portals/{slug}/" if target.startswith((f"/portals/{slug}/login", f"/portals/{slug}/logout")) else target


def _waiting_for_code(visitor: Visitor) -> SessionRecord | None:
    """The browser's unverified session (an address was typed, its code not yet entered)."""
    record = visitor.record
    return record if visitor.kind == "customer" and record and record.method == "email_unverified" else None


def _signed_in(request: Request, target: str, opened: SessionOpened) -> RedirectResponse:
    response = see_other(target)
    set_session_cookie(response, opened.session_token, opened.session, cookie_secure(request))
    return response


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _login_page(request: Request, site: Portal, visitor: Visitor, target: str, *, step: str = "start",
                email: str = "", trouble: Problem | None = None, sign_on_failed: bool = False) -> Response:
    return portal_page(request, site, visitor, "portal/login.html", view="home", section="login",
                       status=trouble.status if trouble else 200, step=step, email=email, next=target,
                       problem=trouble, methods=site.sign_in_methods, waiting=_waiting_for_code(visitor),
                       sign_on_failed=sign_on_failed)


# -- the login page, and custom sign-on's start and return -----------------------------------

@router.get("/portals/{portal}/login", response_class=Response,
            summary="Login page; with custom sign-on, a redirect to the company's login page, and its return")
async def login(request: Request, portal: str = Slug,
                next_path: str | None = Query(default=None, alias="next", max_length=2000),
                external_token: str | None = Query(default=None, alias="externalToken", max_length=8192),
                referral_url: str | None = Query(default=None, alias="referralUrl", max_length=2000),
                tracking_token: str = Query(default="", alias="trackingToken", max_length=200)) -> Response:
    try:
        if external_token is not None:
            return await _sign_on_return(request, portal, external_token, tracking_token)
        site, visitor = await page_portal(request, portal)
        target = _target(site.slug, next_path)
        buttons = [m for m in site.sign_in_methods if m != "sso"]
        if "custom_sign_on" in buttons and (referral_url is not None or buttons == ["custom_sign_on"]):
            try:
                return await _begin_sign_on(request, site.slug, target if referral_url is None else referral_url)
            except ServiceError as exc:
                if exc.code is not ErrorCode.method_disabled:  # turned off a moment ago: the page then
                    raise
    except ServiceError as error:
        if not _wants_page(request):
            response = error_response(error.code, error.message, error.status)
            if error.retry_after:
                response.headers["Retry-After"] = str(error.retry_after)
            return response
        if external_token is None or error.code is ErrorCode.unknown_portal:
            raise
        site, visitor = await page_portal(request, portal)
        return _login_page(request, site, visitor, _target(site.slug, referral_url), trouble=problem(request, error),
                           sign_on_failed=True)
    if visitor.kind == "staff" or (visitor.kind == "customer" and not _waiting_for_code(visitor)):
        return portal_page(request, site, visitor, "portal/login_signed_in.html", view="home", section="login",
                           next=target)
    return _login_page(request, site, visitor, target)


async def _begin_sign_on(request: Request, slug: str, referral: str) -> Response:
    """To the company's login page, with a nonce in a cookie that binds the return to this browser."""
    nonce = secrets.token_urlsafe(24)
    login_url = f"{request.app.state.settings.resolved_public_url}/portals/{slug}/login"
    redirect = await request.app.state.rpc.call(operations.auth.begin_custom_sign_on, BeginCustomSignOn(
        portal=slug, referral_url=referral, browser_nonce=nonce, login_url=login_url))
    response = RedirectResponse(redirect.location, status_code=303)
    response.set_cookie(NONCE_COOKIE, nonce, max_age=15 * 60, httponly=True, secure=cookie_secure(request),
                        samesite="lax", path=f"/portals/{slug}/login")
    return response


async def _sign_on_return(request: Request, slug: str, external_token: str, tracking_token: str) -> Response:
    done = await request.app.state.rpc.call(operations.auth.complete_custom_sign_on, CompleteCustomSignOn(
        portal=slug, external_token=external_token, tracking_token=tracking_token,
        browser_nonce=request.cookies.get(NONCE_COOKIE, ""), client_ip=_client_ip(request),
        replaces_session=request.cookies.get(SESSION_COOKIE)))
    response = RedirectResponse(done.referral_url, status_code=303)
    set_session_cookie(response, done.session_token, done.session, cookie_secure(request))
    response.delete_cookie(NONCE_COOKIE, path=f"/portals/{slug}/login")
    return response


# -- e-mail code -------------------------------------------------------------------------------

@router.post("/portals/{portal}/login", include_in_schema=False)
async def email_step(request: Request, portal: str = Slug, email: str = Form(default="", max_length=1000),
                     next_path: str = Form(default="", alias="next", max_length=2000),
                     how: str = Form(default="", max_length=20)) -> Response:
    site, visitor = await page_portal(request, portal)
    target = _target(site.slug, next_path)
    try:
        try:
            asked = StartEmailAccess(portal=site.slug, email=email, client_ip=_client_ip(request),
                                     replaces_session=request.cookies.get(SESSION_COOKIE))
        except ValidationError:
            raise ServiceError(ErrorCode.invalid_email, "Not an e-mail address.") from None
        if "custom_sign_on" in site.sign_in_methods and how != "code":
            return _login_page(request, site, visitor, target, step="choose", email=asked.email)
        started = await request.app.state.rpc.call(operations.auth.start_email_access, asked)
    except ServiceError as error:
        field = "email" if error.code in (ErrorCode.invalid_email, ErrorCode.rate_limited) else ""
        return _login_page(request, site, visitor, target, email=email, trouble=problem(request, error, field))
    response = see_other(f"/portals/{site.slug}/login/code?next={quote(target, safe='/')}")
    if started.session_token and started.session:
        set_session_cookie(response, started.session_token, started.session, cookie_secure(request))
    return response


def _code_page(request: Request, site: Portal, visitor: Visitor, record: SessionRecord, target: str, *,
               trouble: Problem | None = None, sent: str = "") -> Response:
    return portal_page(request, site, visitor, "portal/login_code.html", view="home", section="login",
                       status=trouble.status if trouble else 200, email=record.email or "", next=target,
                       problem=trouble, sent=sent)


@router.get("/portals/{portal}/login/code", include_in_schema=False)
async def code_page(request: Request, portal: str = Slug,
                    next_path: str | None = Query(default=None, alias="next", max_length=2000),
                    sent: str = Query(default="", max_length=10)) -> Response:
    site, visitor = await page_portal(request, portal)
    target = _target(site.slug, next_path)
    record = _waiting_for_code(visitor)
    if record is None:  # signed in meanwhile, or no code asked for (or that was over an hour ago)
        return see_other(target if visitor.kind in ("customer", "staff") else
                         f"/portals/{site.slug}/login?next={quote(target, safe='/')}")
    return _code_page(request, site, visitor, record, target, sent=sent)


@router.post("/portals/{portal}/login/code", include_in_schema=False)
async def enter_code(request: Request, portal: str = Slug, code: str = Form(default="", max_length=100),
                     next_path: str = NextField) -> Response:
    site, visitor = await page_portal(request, portal)
    target = _target(site.slug, next_path)
    record = _waiting_for_code(visitor)
    if record is None or not record.email or visitor.token is None:
        return see_other(f"/portals/{site.slug}/login?next={quote(target, safe='/')}")
    if not code.strip():
        trouble = Problem(gettext(request, "Please enter the code from the e-mail."), "code", 422)
        return _code_page(request, site, visitor, record, target, trouble=trouble)
    try:
        opened = await request.app.state.rpc.call(operations.auth.verify_email_code, VerifyEmailCode(
            portal=site.slug, email=record.email, code=code[:20], client_ip=_client_ip(request),
            replaces_session=visitor.token, say_why=True))
    except ServiceError as error:
        return _code_page(request, site, visitor, record, target, trouble=problem(request, error, "code"))
    return _signed_in(request, target, opened)


@router.post("/portals/{portal}/login/code/new", include_in_schema=False)
async def new_code(request: Request, portal: str = Slug, next_path: str = NextField) -> Response:
    """Another code for the address this browser is waiting on. The auth service limits how many an address
    gets (`limits.CODE_REQUESTS_PER_ACCOUNT`): past it, the page says when the next one may be asked for."""
    site, visitor = await page_portal(request, portal)
    target = _target(site.slug, next_path)
    record = _waiting_for_code(visitor)
    if record is None or not record.email:
        return see_other(f"/portals/{site.slug}/login?next={quote(target, safe='/')}")
    try:
        started = await request.app.state.rpc.call(operations.auth.start_email_access, StartEmailAccess(
            portal=site.slug, email=record.email, client_ip=_client_ip(request), replaces_session=visitor.token))
    except ServiceError as error:
        return _code_page(request, site, visitor, record, target, trouble=problem(request, error, "resend"))
    response = see_other(f"/portals/{site.slug}/login/code?next={quote(target, safe='/')}&sent=new")
    if started.session_token and started.session:
        set_session_cookie(response, started.session_token, started.session, cookie_secure(request))
    return response


# -- anonymous, staff, sign out ------------------------------------------------------------------

@router.post("/portals/{portal}/login/anonymous", include_in_schema=False)
async def continue_anonymously(request: Request, portal: str = Slug, next_path: str = NextField) -> Response:
    site, visitor = await page_portal(request, portal)
    target = _target(site.slug, next_path)
    try:
        opened = await request.app.state.rpc.call(operations.auth.anonymous_login, AnonymousLogin(portal=site.slug))
    except ServiceError as error:
        return _login_page(request, site, visitor, target, trouble=problem(request, error))
    return _signed_in(request, target, opened)


def _staff_page(request: Request, site: Portal, visitor: Visitor, target: str, *, email: str = "",
                trouble: Problem | None = None) -> Response:
    return portal_page(request, site, visitor, "portal/login_staff.html", view="home", section="login",
                       status=trouble.status if trouble else 200, email=email, next=target, problem=trouble)


@router.get("/portals/{portal}/login/staff", include_in_schema=False)
async def staff_page(request: Request, portal: str = Slug,
                     next_path: str | None = Query(default=None, alias="next", max_length=2000)) -> Response:
    site, visitor = await page_portal(request, portal)
    return _staff_page(request, site, visitor, _target(site.slug, next_path))


@router.post("/portals/{portal}/login/staff", include_in_schema=False)
async def staff_sign_in(request: Request, portal: str = Slug, email: str = Form(default="", max_length=1000),
                        password: str = Form(default="", max_length=2000), next_path: str = NextField) -> Response:
    site, visitor = await page_portal(request, portal)
    target = _target(site.slug, next_path)
    try:
        try:
            asked = StaffLogin(email=email, password=password, client_ip=_client_ip(request))
        except ValidationError:  # longer than any address or password: as a wrong one
            raise ServiceError(ErrorCode.invalid_credentials, "Wrong e-mail or password.") from None
        opened = await request.app.state.rpc.call(operations.auth.staff_login, asked)
    except ServiceError as error:
        return _staff_page(request, site, visitor, target, email=email, trouble=problem(request, error))
    return _signed_in(request, target, opened)


@router.post("/portals/{portal}/logout", include_in_schema=False)
async def logout(request: Request, portal: str = Slug) -> Response:
    """Ends the session on every gateway (the operation of `DELETE /api/v1/session`) and forgets the cookie;
    without a session it only forgets the cookie. Either way: the portal's start page."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 200:
        await request.app.state.rpc.call(operations.auth.logout, EndSession(session_token=token))
    response = see_other(f"/portals/{portal}/")
    clear_session_cookie(response, cookie_secure(request))
    return response
