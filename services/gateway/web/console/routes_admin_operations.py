"""Operations in the admin console (admins only), `GET /admin/operations`:

- each service's status as `/readyz` reports it (`rpc.<service>.ping`: the replica that answered, its
  database, its outbox backlog) and each durable event consumer's backlog (JetStream consumer info);
- failed notifications, each with "Try again" (`POST /admin/operations/notifications/{id}/retry`), and
  bounced e-mails: the operations `GET /api/v1/admin/notifications` and `…/{id}/retry` call, for the
  admin's organisation;
- dead-lettered events of the admin's organisation, read from the DLQ stream as `portico dlq list` reads it
  (`services.runtime.backlog`), through the gateway's NATS connection.

A part that cannot be read (a service down, the message bus unreachable) says so; the rest still shows.
"""

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.notifications import ListNotifications, RetryNotification
from contracts.roles import Permission
from contracts.rpc import Ping
from contracts.states import NotificationStatus
from contracts.subjects import SERVICES
from services.gateway.routes_health import READY_TIMEOUT
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.rendering import gettext
from services.gateway.web.words import _, say
from services.runtime.backlog import consumer_lags, dead_letters

router = APIRouter(include_in_schema=False)

T = TypeVar("T")
LISTED = 100
RETRIED_WORDS = {"sent": _("The notification was sent."),
                 "pending": _("The notification is queued and will be tried again shortly."),
                 "failed": _("The notification failed again: see its error below.")}


async def part(job: Awaitable[T]) -> tuple[T | None, str]:
    """The value of one part of the page, or None and why it cannot be shown."""
    try:
        return await job, ""
    except ServiceError as error:
        return None, error.message
    except Exception as exc:  # the message bus going away while the page is read
        return None, f"{type(exc).__name__}: {exc}"


async def service_status(request: Request) -> list[dict[str, Any]]:
    """Each service as `/readyz` reports it."""
    async def probe(service: str) -> dict[str, Any]:
        try:
            pong = await request.app.state.rpc.call(operations.ping(service), Ping(), timeout=READY_TIMEOUT)
        except ServiceError as error:
            return {"service": service, "status": "down", "message": error.message}
        return {"service": service, "status": "ok" if pong.database == "ok" else "degraded",
                "instance": pong.instance, "database": pong.database, "outbox_pending": pong.outbox_pending}

    return list(await asyncio.gather(*(probe(s) for s in SERVICES)))


def jetstream(request: Request):  # type: ignore[no-untyped-def]
    """The gateway's JetStream context; `service_unavailable` while NATS is not connected."""
    if not request.app.state.is_connected():
        raise ServiceError(ErrorCode.service_unavailable, "The message bus is unreachable.")
    return request.app.state.broker.config.connection_state.stream


async def organisation_letters(request: Request, staff: Staff) -> list[dict[str, Any]]:
    letters = await dead_letters(jetstream(request), LISTED, org_id=staff.record.org_id)
    return [{**letter.as_dict(), "failed": when(letter.failed_at)} for letter in reversed(letters)]


async def lags(request: Request) -> list[Any]:
    return await consumer_lags(jetstream(request))


def when(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


async def notifications(request: Request, staff: Staff, status: NotificationStatus) -> list[Any]:
    listed = await request.app.state.rpc.call(operations.notifications.list_notifications,
                                              ListNotifications(actor=staff.actor, status=status, limit=LISTED))
    return listed.notifications


async def operations_page(request: Request, staff: Staff, *, status: int = 200, notice: str = "",
                          error: str = "") -> HTMLResponse:
    (services, _none), (consumers, consumers_error), (failed, failed_error), (bounced, bounced_error), \
        (letters, letters_error) = await asyncio.gather(
            part(service_status(request)), part(lags(request)),
            part(notifications(request, staff, NotificationStatus.failed)),
            part(notifications(request, staff, NotificationStatus.bounced)),
            part(organisation_letters(request, staff)))
    return staff_page(request, staff, "staff/admin_operations.html", section="admin-operations", status=status,
                      services=services or [], consumers=consumers or [], consumers_error=consumers_error,
                      failed=failed or [], failed_error=failed_error, bounced=bounced or [],
                      bounced_error=bounced_error, letters=letters or [], letters_error=letters_error,
                      notice=notice, error=error, listed=LISTED)


@router.get("/admin/operations", response_class=HTMLResponse)
async def operations_overview(request: Request) -> HTMLResponse:
    staff = await require_staff(request, Permission.administer)
    words = RETRIED_WORDS.get(request.query_params.get("retried", ""))
    return await operations_page(request, staff, notice=gettext(request, words) if words else "")


@router.post("/admin/operations/notifications/{notification_id}/retry", response_class=Response)
async def retry(request: Request, notification_id: str = Path(min_length=1, max_length=26)) -> Response:
    """Try a failed notification again now; the page then says whether it went."""
    staff = await require_staff(request, Permission.administer)
    try:
        retried = await request.app.state.rpc.call(operations.notifications.retry_notification,
                                                   RetryNotification(actor=staff.actor,
                                                                     notification_id=notification_id))
    except ServiceError as error:
        if error.code not in (ErrorCode.not_found, ErrorCode.conflict):
            raise
        words = say(request, error) if error.code is ErrorCode.not_found else gettext(
            request, "Only failed notifications are tried again; this one is not failed any more.")
        return await operations_page(request, staff, status=error.status, error=words)
    return see_other(f"/admin/operations?retried={retried.notification.status}#failed")
