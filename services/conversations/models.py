"""conversations' tables."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from services.runtime.db import UtcDateTime


class Customer(SQLModel, table=True):
    """conversations' own copy of an account, built from auth's `UserRegistered` events."""

    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=26)
    org_id: str = Field(index=True, max_length=26)
    email: str = Field(max_length=320)
    display_name: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=20)
    registered_at: datetime = Field(sa_type=UtcDateTime)
    version: int = Field(description="aggregate_version of the last event applied")
