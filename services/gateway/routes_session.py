"""Portal sign-in."""

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from contracts.rpc import EmailAccessStarted, StartEmailAccess
from services.gateway.deps import Rpc

router = APIRouter(prefix="/api/v1/portals/{portal}", tags=["sign-in"])

PortalSlug = Path(description="Portal slug", min_length=1, max_length=100, examples=["demo"])


class EmailAccessBody(BaseModel):
    email: str = Field(description="The customer's e-mail address.", examples=["ana@example.com"], max_length=320)


@router.post("/session/email", status_code=202, response_model=EmailAccessStarted,
             summary="Start e-mail access: the account is created if needed and a code is to be sent")
async def start_email_access(body: EmailAccessBody, rpc: Rpc, portal: str = PortalSlug) -> EmailAccessStarted:
    return await rpc.call("auth", "start_email_access", StartEmailAccess(portal=portal, email=body.email),
                          EmailAccessStarted)
