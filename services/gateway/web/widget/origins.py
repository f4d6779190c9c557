"""Which sites a portal's chat widget works on: the portal's `widget_origins` (set by its admin with
`PATCH /api/v1/admin/portals/{portal}/settings`, normalised by auth) and the portal's own origin.

The portal's public information (`auth.portal_info`) is kept `TTL` seconds per gateway, as the portal
pages keep theirs: an origin an admin adds or removes counts within that time.
"""

import time
from typing import cast

from starlette.requests import Request

from contracts import operations
from contracts.rpc import GetPortalInfo, PortalInfo
from services.gateway.edge import _origin as origin_of

TTL = 2.0


async def portal_info(request: Request, slug: str) -> PortalInfo:
    """The portal's public information, with its `widget_origins`; `unknown_portal` when there is none."""
    state = request.app.state
    if not hasattr(state, "widget_portals"):
        state.widget_portals = {}
    kept = cast(dict[str, tuple[float, PortalInfo]], state.widget_portals)
    now = time.monotonic()
    cached = kept.get(slug)
    if cached and cached[0] > now:
        return cached[1]
    info = await request.app.state.rpc.call(operations.auth.portal_info, GetPortalInfo(portal=slug))
    kept[slug] = (now + TTL, info)
    return info


def own_origins(request: Request) -> set[str]:
    """Portico's own origin: as configured (`PORTICO_PUBLIC_URL`) and as this request reached it."""
    found = {origin_of(request.app.state.settings.resolved_public_url),
             origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}")}
    return {origin for origin in found if origin}


def allowed_hosts(request: Request, info: PortalInfo) -> set[str]:
    """The origins whose pages may embed this portal's widget and talk to it."""
    return set(info.widget_origins) | own_origins(request)


def host_of(value: str | None) -> str | None:
    """`value` as an origin (`scheme://host[:port]`, lower case, no default port), or None."""
    if not value or len(value) > 300:
        return None
    return origin_of(value)


def frame_ancestors(request: Request, info: PortalInfo) -> str:
    """The `frame-ancestors` source list: the portal itself and the origins its admin allowed."""
    return " ".join(["'self'", *sorted(allowed_hosts(request, info))])
