"""Request/reply messages. Subject: `rpc.<service>.<operation>`, queue group = service name.

A reply is either `{"data": <reply model>}` or an `ErrorBody` (`{"error", "message"}`).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- every service -----------------------------------------------------------------

class Ping(Request):
    """Readiness probe: answered by every service."""


class Pong(Reply):
    service: str = Field(description="Service name.", examples=["auth"])
    instance: str = Field(description="Id of the replica that answered.")
    database: Literal["ok", "error"] = Field(description="Whether the service's database answered.")
    outbox_pending: int = Field(description="Events committed but not yet published.", ge=0)


# -- auth ----------------------------------------------------------------------------

class StartEmailAccess(Request):
    """Start e-mail access to a portal: creates the customer when the e-mail is new."""

    portal: str = Field(description="Portal slug.", examples=["demo"], min_length=1, max_length=100)
    email: str = Field(description="E-mail address as typed.", examples=["ana@example.com"], max_length=320)


class EmailAccessStarted(Reply):
    portal: str = Field(description="Portal slug.")
    status: Literal["pending_verification"] = Field(
        description="Same answer whether or not the e-mail had an account.")
