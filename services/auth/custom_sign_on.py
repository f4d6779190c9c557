"""Custom sign-on: the portal sends the browser to the company's login page and takes it back with
an `externalToken` (HS256 JWT `{email, iat}`, 15 minutes). The `trackingToken` is a random,
single-use state bound to the browser by a cookie nonce, so a token can't be replayed into
another browser or a login started elsewhere."""

import hashlib
import json
import secrets
from urllib.parse import urlencode, urlsplit

import nats.js.errors
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import (
    BeginCustomSignOn,
    CompleteCustomSignOn,
    CustomSignOnDone,
    CustomSignOnRedirect,
)
from services.auth import limits
from services.auth.accounts import require_method
from services.auth.caches import portals
from services.auth.domain import normalize_email
from services.auth.models import Portal
from services.auth.signin import sign_in_customer
from services.auth.tokens import SigningKey, verify_token
from services.runtime.service import Service


EXTERNAL_TOKEN_MAX_AGE = 15 * 60


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def safe_referral(referral: str, portal: str) -> str:
    """Only a path on this site: never another origin (no open redirect)."""
    home = f"/portals/{portal}"
    if not referral:
        return home
    parts = urlsplit(referral)
    if parts.scheme or parts.netloc or not referral.startswith("/") or referral.startswith("//") or "\\" in referral:
        return home
    return referral


async def _portal(service: Service, slug: str) -> tuple[Portal, list[SigningKey]]:
    """The portal (custom sign-on set up) and its live secrets, from this replica's portal cache."""
    known = await portals(service).get(slug)
    require_method(known.portal, "custom_sign_on")
    return known.portal, known.signing_keys()


async def begin(service: Service, request: BeginCustomSignOn) -> CustomSignOnRedirect:
    portal, _ = await _portal(service, request.portal)
    tracking = secrets.token_urlsafe(24)
    referral = safe_referral(request.referral_url, portal.slug)
    state = {"portal": portal.slug, "nonce": _hash(request.browser_nonce), "referral": referral}
    await service.resources["sign_on_state"].put(_hash(tracking), json.dumps(state).encode())
    back = f"{request.login_url}?{urlencode({'referralUrl': referral, 'trackingToken': tracking})}"
    separator = "&" if urlsplit(portal.custom_sign_on_redirect_uri).query else "?"  # type: ignore[arg-type]
    location = (f"{portal.custom_sign_on_redirect_uri}{separator}"
                f"{urlencode({'trackingToken': tracking, 'kustomerRedirectUri': back})}")
    return CustomSignOnRedirect(location=location)


async def complete(service: Service, request: CompleteCustomSignOn) -> CustomSignOnDone:
    await service.resources["limits"].hit(limits.TOKEN_LOGINS_PER_IP, request.client_ip)
    portal, keys = await _portal(service, request.portal)
    state = await _take_state(service, request)
    claims = verify_token(request.external_token, keys, max_age_seconds=EXTERNAL_TOKEN_MAX_AGE)
    email = normalize_email(claims["email"])
    token, record = await sign_in_customer(service, portal, email, claims.get("displayName"), "custom_sign_on",
                                           request.replaces_session)
    return CustomSignOnDone(session_token=token, session=record, referral_url=state["referral"])


async def _take_state(service: Service, request: CompleteCustomSignOn) -> dict[str, str]:
    """The login this browser started, used up now; anything else is `invalid_state`."""
    invalid = ServiceError(ErrorCode.invalid_state,
                           "This sign-in was not started in this browser, was used already or took over 15 "
                           "minutes; start again from the portal's login page.")
    if not request.tracking_token or not request.browser_nonce:
        raise invalid
    kv = service.resources["sign_on_state"]
    key = _hash(request.tracking_token)
    try:
        entry = await kv.get(key)
        await kv.delete(key, last=entry.revision)  # single use, even when two returns race
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyWrongLastSequenceError) as exc:
        raise invalid from exc
    state = json.loads(entry.value or b"{}")
    if state.get("portal") != request.portal or not secrets.compare_digest(state.get("nonce", ""),
                                                                           _hash(request.browser_nonce)):
        raise invalid
    return state
