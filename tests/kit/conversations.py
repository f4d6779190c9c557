"""Shared setup for the conversation tests: the demo org, customers signed in by SSO, an agent."""

import time
from datetime import UTC, datetime, timedelta
from dataclasses import dataclass

import httpx
import jwt
from sqlalchemy import text

from services.runtime.db import make_engine
from tests.kit.seeding import seed

API_KEY = "pk_test_key_for_the_demo_org_0123456789"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Demo:
    base_url: str
    secret: str
    settings: object
    admin: httpx.AsyncClient

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=20)

    async def customer(self, email: str, portal: str = "demo", secret: str | None = None) -> httpx.AsyncClient:
        browser = self.browser()
        token = jwt.encode({"email": email, "iat": int(time.time()), "displayName": email.split("@")[0]},
                           secret or self.secret, algorithm="HS256")
        response = await browser.post(f"/api/v1/portals/{portal}/session/sso", json={"token": token})
        assert response.status_code == 200, response.text
        return browser

    async def anonymous(self, portal: str = "demo") -> httpx.AsyncClient:
        browser = self.browser()
        response = await browser.post(f"/api/v1/portals/{portal}/session/anonymous")
        assert response.status_code == 200, response.text
        return browser

    async def staff(self, email: str, role: str) -> httpx.AsyncClient:
        created = await self.admin.post("/api/v1/admin/staff", json={
            "email": email, "role": role, "display_name": role.title(), "password": "a-long-staff-password"})
        assert created.status_code == 201, created.text
        browser = self.browser()
        response = await browser.post("/api/v1/staff/session", json={"email": email,
                                                                       "password": "a-long-staff-password"})
        assert response.status_code == 200, response.text
        return browser

    async def settings_(self, portal: str = "demo", **values: object) -> dict:
        response = await self.admin.patch(f"/api/v1/admin/portals/{portal}/conversation-settings", json=values)
        assert response.status_code == 200, response.text
        return response.json()


async def make_demo(settings, gateway) -> Demo:  # type: ignore[no-untyped-def]
    seed(settings)
    admin = httpx.AsyncClient(base_url=gateway.base_url, headers=ADMIN, timeout=20)
    portal = (await admin.get("/api/v1/admin/portals/demo")).json()
    secret = (await admin.get(f"/v1/auth/kb/{portal['kb_id']}/settings")).json()["data"]["attributes"]["secret"]
    return Demo(base_url=gateway.base_url, secret=secret, settings=settings, admin=admin)


async def start(browser: httpx.AsyncClient, subject: str = "Invoice is wrong", body: str = "Hello, invoice 42 ...",
                portal: str = "demo", **kwargs: object) -> dict:
    response = await browser.post(f"/api/v1/portals/{portal}/conversations", json={"subject": subject, "body": body},
                                  **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    return response.json()["conversation"]


def closed_days_ago(demo, cid: str, days: int) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(demo.settings.database_url("conversations"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE conversations SET closed_at = :at WHERE id = :id"),
                     {"at": (datetime.now(UTC) - timedelta(days=days)).replace(tzinfo=None), "id": cid})
    engine.dispose()


async def ana_conversation(demo: Demo) -> tuple[httpx.AsyncClient, str]:
    """Ana signed in by SSO, and the id of a conversation she just started."""
    ana = await demo.customer("ana@example.com")
    return ana, (await start(ana))["id"]
