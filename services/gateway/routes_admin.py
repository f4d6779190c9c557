"""Admin API (`/api/v1/admin/...`) and the Kustomer-compatible settings endpoint."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts import operations
from contracts.rpc import (
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyView,
    CreateApiKey,
    CreatePortal,
    CreateStaff,
    GetPortal,
    KbSettings,
    ListApiKeys,
    ListPortals,
    ListStaff,
    NewSecret,
    PortalList,
    PortalSettings,
    PortalView,
    RevokeApiKey,
    RevokeSecret,
    RotateSecret,
    SecretRevoked,
    StaffCreated,
    StaffList,
    StaffUpdated,
    UpdatePortalSettings,
    UpdateStaff,
)
from services.gateway.auth import AdminActor
from services.gateway.deps import PortalSlug, Rpc

router = APIRouter(tags=["admin"])


class NewPortalBody(BaseModel):
    slug: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$", examples=["help"])
    name: str = Field(min_length=1, max_length=200, examples=["Help centre"])


class RotateBody(BaseModel):
    grace_minutes: int = Field(default=60, ge=0, le=60 * 24 * 30,
                               description="How long the current secrets keep working beside the new one.")


@router.post("/api/v1/admin/portals", status_code=201, response_model=PortalView)
async def create_portal(body: NewPortalBody, actor: AdminActor, rpc: Rpc) -> PortalView:
    return await rpc.call(operations.auth.create_portal, CreatePortal(actor=actor, slug=body.slug, name=body.name))


@router.get("/api/v1/admin/portals", response_model=PortalList, summary="The organisation's portals, by name")
async def list_portals(actor: AdminActor, rpc: Rpc) -> PortalList:
    return await rpc.call(operations.auth.list_portals, ListPortals(actor=actor))


@router.get("/api/v1/admin/portals/{portal}", response_model=PortalView,
            summary="A portal with its kb_id, settings and secret ids")
async def get_portal(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> PortalView:
    return await rpc.call(operations.auth.get_portal, GetPortal(actor=actor, portal=portal))


@router.patch("/api/v1/admin/portals/{portal}/settings", response_model=PortalView,
              summary="Change sign-in settings (methods, session lifetime, idle timeout, token age, "
                      "widget origins)")
async def update_settings(body: PortalSettings, actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> PortalView:
    return await rpc.call(operations.auth.update_portal_settings,
                          UpdatePortalSettings(actor=actor, portal=portal, settings=body))


@router.post("/api/v1/admin/portals/{portal}/secrets", status_code=201, response_model=NewSecret,
             summary="Rotate: a new secret at once; the current ones work for the grace period")
async def rotate_secret(actor: AdminActor, rpc: Rpc, body: RotateBody | None = None,
                        portal: str = PortalSlug) -> NewSecret:
    grace = (body or RotateBody()).grace_minutes
    return await rpc.call(operations.auth.rotate_secret, RotateSecret(actor=actor, portal=portal, grace_minutes=grace))


@router.delete("/api/v1/admin/portals/{portal}/secrets/{kid}", response_model=SecretRevoked,
               summary="Revoke a secret at once")
async def revoke_secret(actor: AdminActor, rpc: Rpc, kid: str = Path(max_length=40),
                        portal: str = PortalSlug) -> SecretRevoked:
    return await rpc.call(operations.auth.revoke_secret, RevokeSecret(actor=actor, portal=portal, kid=kid))


@router.get("/v1/auth/kb/{kb_id}/settings", summary="Kustomer-compatible: the portal secret for a kb_id")
async def kustomer_kb_settings(actor: AdminActor, rpc: Rpc, kb_id: str = Path(max_length=64)) -> dict:
    secret = await rpc.call(operations.auth.kb_settings, KbSettings(actor=actor, kb_id=kb_id))
    return {"data": {"attributes": {"secret": secret.secret}}}


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59-14:00 is past the last time Python can hold in UTC
        raise ValueError("the time is out of range") from exc


# A time held in UTC: one without an offset is taken as UTC; one that has no UTC spelling is refused.
UtcTime = Annotated[datetime, AfterValidator(_in_utc)]


class NewApiKeyBody(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["crm sync"])
    role: Literal["org.admin", "org.agent", "org.read"] = Field(examples=["org.admin"])
    expires_at: UtcTime | None = Field(default=None,
                                      description="Optional expiry (ISO 8601; UTC unless it has an offset).")


@router.post("/api/v1/admin/api-keys", status_code=201, response_model=ApiKeyCreated,
             summary="New API key; the key is in this answer only, Portico keeps its hash")
async def create_api_key(body: NewApiKeyBody, actor: AdminActor, rpc: Rpc) -> ApiKeyCreated:
    return await rpc.call(operations.auth.create_api_key, CreateApiKey(actor=actor, **body.model_dump()))


@router.get("/api/v1/admin/api-keys", response_model=ApiKeyList, summary="The org's API keys (never the keys)")
async def list_api_keys(actor: AdminActor, rpc: Rpc) -> ApiKeyList:
    return await rpc.call(operations.auth.list_api_keys, ListApiKeys(actor=actor))


@router.delete("/api/v1/admin/api-keys/{key_id}", response_model=ApiKeyView, summary="Revoke an API key at once")
async def revoke_api_key(actor: AdminActor, rpc: Rpc, key_id: str = Path(max_length=26)) -> ApiKeyView:
    return await rpc.call(operations.auth.revoke_api_key, RevokeApiKey(actor=actor, key_id=key_id))


@router.get("/api/v1/admin/staff", response_model=StaffList, summary="The org's staff accounts and roles")
async def list_staff(actor: AdminActor, rpc: Rpc) -> StaffList:
    return await rpc.call(operations.auth.list_staff, ListStaff(actor=actor))


class NewStaffBody(BaseModel):
    email: str = Field(max_length=320, examples=["agent@example.com"])
    display_name: str | None = Field(default=None, max_length=200)
    role: Literal["agent", "content_manager", "admin"]
    password: str | None = Field(default=None, min_length=12, max_length=1024,
                                 description="Omit to have one generated and shown once.")


@router.post("/api/v1/admin/staff", status_code=201, response_model=StaffCreated,
             summary="New staff account (agent, content_manager or admin)")
async def create_staff(body: NewStaffBody, actor: AdminActor, rpc: Rpc) -> StaffCreated:
    return await rpc.call(operations.auth.create_staff, CreateStaff(actor=actor, **body.model_dump()))


class StaffChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["agent", "content_manager", "admin"] | None = None
    disabled: bool | None = Field(default=None, description="True: the account cannot sign in; false: it can again.")


@router.patch("/api/v1/admin/staff/{user_id}", response_model=StaffUpdated,
              summary="Change a staff member's role, or disable or enable the account (ends their open sessions)")
async def update_staff(body: StaffChangeBody, actor: AdminActor, rpc: Rpc,
                       user_id: str = Path(max_length=26)) -> StaffUpdated:
    return await rpc.call(operations.auth.update_staff, UpdateStaff(actor=actor, user_id=user_id,
                                                                     **body.model_dump()))
