"""auth's RPC endpoints: thin, each one transaction."""

from sqlmodel import Session

from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import EmailAccessStarted, StartEmailAccess
from services.auth.accounts import get_or_create_user, portal_by_slug
from services.auth.domain import normalize_email


def start_email_access(session: Session, request: StartEmailAccess) -> EmailAccessStarted:
    """Start e-mail access: the customer's account is created if the e-mail is new.

    The answer is the same whether or not the e-mail had an account.
    """
    portal = portal_by_slug(session, request.portal)
    if not portal.email_access_enabled:
        raise ServiceError(ErrorCode.method_disabled, f"E-mail access is turned off for portal '{portal.slug}'.")
    email = normalize_email(request.email)
    get_or_create_user(session, org_id=portal.org_id, email=email, kind="customer", method="email",
                       portal=portal.slug)
    return EmailAccessStarted(portal=portal.slug, status="pending_verification")
