"""Signing in as the tests do: the admin key, SSO tokens signed with the portal's secret."""

import time
import jwt


API_KEY = "pk_test_key_for_the_demo_org_0123456789"


ADMIN = {"Authorization": f"Bearer {API_KEY}"}


SSO = "/api/v1/portals/demo/session/sso"


async def portal_secret(gateway) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The demo portal's secret the way a company moving from Kustomer fetches it, and its kid."""
    portal = (await gateway.client.get("/api/v1/admin/portals/demo", headers=ADMIN)).json()
    response = await gateway.client.get(f"/v1/auth/kb/{portal['kb_id']}/settings", headers=ADMIN)
    assert response.status_code == 200, response.text
    live = [s["kid"] for s in portal["secrets"] if s["live"]]
    return response.json()["data"]["attributes"]["secret"], live[-1]


def sign(secret: str, **claims: object) -> str:
    body = {"iat": int(time.time()), **claims}
    return jwt.encode(body, secret, algorithm="HS256")
