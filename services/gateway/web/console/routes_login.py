"""`/agent/login` and `/agent/logout`: the staff sign-in of the agent workspace and the admin console,
with the same operations as `POST /api/v1/staff/session` and `DELETE /api/v1/session`."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from contracts import operations
from contracts.errors import ServiceError
from contracts.rpc import EndSession, StaffLogin
from contracts.sessions import SESSION_COOKIE
from services.gateway.auth import clear_session_cookie, cookie_secure, read_session, set_session_cookie
from services.gateway.web.pages import see_other
from services.gateway.web.console.staff import Staff, safe_staff_next, staff_page
from services.gateway.web.words import say

router = APIRouter(include_in_schema=False)


@router.get("/agent/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "") -> Response:
    found = await read_session(request)
    if found is not None and found[1].kind == "staff":
        return see_other(safe_staff_next(next))
    return staff_page(request, None, "staff/login.html", next=safe_staff_next(next), email="", error=None)


@router.post("/agent/login", response_class=HTMLResponse)
async def login(request: Request, email: Annotated[str, Form(max_length=320)] = "",
                password: Annotated[str, Form(max_length=1024)] = "",
                next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        opened = await request.app.state.rpc.call(operations.auth.staff_login, StaffLogin(
            email=email, password=password, client_ip=request.client.host if request.client else ""))
    except ServiceError as error:
        response = staff_page(request, None, "staff/login.html", status=error.status, next=safe_staff_next(next),
                              email=email, error=say(request, error))
        if error.retry_after:
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    response = see_other(safe_staff_next(next))
    set_session_cookie(response, opened.session_token, opened.session, cookie_secure(request))
    return response


@router.post("/agent/logout")
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app.state.rpc.call(operations.auth.logout, EndSession(session_token=token))
    response = see_other("/agent/login")
    clear_session_cookie(response, cookie_secure(request))
    return response


__all__ = ["Staff", "router"]
