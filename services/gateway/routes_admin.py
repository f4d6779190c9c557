"""Admin API (`/api/v1/admin/...`) and the Kustomer-compatible settings endpoint."""

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from contracts.rpc import (
    CreatePortal,
    GetPortal,
    KbSecret,
    KbSettings,
    NewSecret,
    PortalSettings,
    PortalView,
    RevokeSecret,
    RotateSecret,
    SecretRevoked,
    UpdatePortalSettings,
)
from services.gateway.auth import AdminActor
from services.gateway.deps import Rpc

router = APIRouter(tags=["admin"])

PortalSlug = Path(description="Portal slug", min_length=1, max_length=100, examples=["demo"])


class NewPortalBody(BaseModel):
    slug: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$", examples=["help"])
    name: str = Field(min_length=1, max_length=200, examples=["Help centre"])


class RotateBody(BaseModel):
    grace_minutes: int = Field(default=60, ge=0, le=60 * 24 * 30,
                               description="How long the current secrets keep working beside the new one.")


@router.post("/api/v1/admin/portals", status_code=201, response_model=PortalView)
async def create_portal(body: NewPortalBody, actor: AdminActor, rpc: Rpc) -> PortalView:
    return await rpc.call("auth", "create_portal", CreatePortal(actor=actor, slug=body.slug, name=body.name),
                          PortalView)


@router.get("/api/v1/admin/portals/{portal}", response_model=PortalView,
            summary="A portal with its kb_id, settings and secret ids")
async def get_portal(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> PortalView:
    return await rpc.call("auth", "get_portal", GetPortal(actor=actor, portal=portal), PortalView)


@router.patch("/api/v1/admin/portals/{portal}/settings", response_model=PortalView,
              summary="Change sign-in settings (methods, session lifetime, idle timeout, token age)")
async def update_settings(body: PortalSettings, actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> PortalView:
    return await rpc.call("auth", "update_portal_settings",
                          UpdatePortalSettings(actor=actor, portal=portal, settings=body), PortalView)


@router.post("/api/v1/admin/portals/{portal}/secrets", status_code=201, response_model=NewSecret,
             summary="Rotate: a new secret at once; the current ones work for the grace period")
async def rotate_secret(actor: AdminActor, rpc: Rpc, body: RotateBody | None = None,
                        portal: str = PortalSlug) -> NewSecret:
    grace = (body or RotateBody()).grace_minutes
    return await rpc.call("auth", "rotate_secret", RotateSecret(actor=actor, portal=portal, grace_minutes=grace),
                          NewSecret)


@router.delete("/api/v1/admin/portals/{portal}/secrets/{kid}", response_model=SecretRevoked,
               summary="Revoke a secret at once")
async def revoke_secret(actor: AdminActor, rpc: Rpc, kid: str = Path(max_length=40),
                        portal: str = PortalSlug) -> SecretRevoked:
    return await rpc.call("auth", "revoke_secret", RevokeSecret(actor=actor, portal=portal, kid=kid), SecretRevoked)


@router.get("/v1/auth/kb/{kb_id}/settings", summary="Kustomer-compatible: the portal secret for a kb_id")
async def kustomer_kb_settings(actor: AdminActor, rpc: Rpc, kb_id: str = Path(max_length=64)) -> dict:
    secret = await rpc.call("auth", "kb_settings", KbSettings(actor=actor, kb_id=kb_id), KbSecret)
    return {"data": {"attributes": {"secret": secret.secret}}}
