"""kb's tables. Searching is not done by the database: each kb replica holds its own index of the published
articles (`services.kb.search`), built from these tables."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.runtime.db import UtcDateTime


class KbPortal(SQLModel, table=True):
    """A portal as kb knows it (from auth), with its knowledge-base switches."""

    __tablename__ = "kb_portals"

    slug: str = Field(primary_key=True, max_length=100)
    org_id: str = Field(max_length=26)
    kb_id: str = Field(max_length=36)
    portal_for_agents: bool = False
    internal_kb: bool = False
    show_only_internal: bool = False
    content_version: int = Field(default=0, description="Bumped by every change of a published article.")
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Category(SQLModel, table=True):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("portal", "slug", name="uq_categories_portal_slug"),)

    id: str = Field(primary_key=True, max_length=26)
    portal: str = Field(max_length=100)
    slug: str = Field(max_length=100)
    name: str = Field(max_length=200)


class Article(SQLModel, table=True):
    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("portal", "slug", name="uq_articles_portal_slug"),)

    id: str = Field(primary_key=True, max_length=26)
    portal: str = Field(max_length=100, index=True)
    slug: str = Field(max_length=200)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    category_id: str | None = Field(default=None, max_length=26)
    visibility: str = Field(max_length=10)  # public | internal
    status: str = Field(max_length=10)  # draft | published
    locale: str = Field(max_length=20)
    version: int
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ArticleRevision(SQLModel, table=True):
    __tablename__ = "article_revisions"

    id: str = Field(primary_key=True, max_length=26)
    article_id: str = Field(max_length=26, index=True)
    version: int
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    visibility: str = Field(max_length=10)
    author: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UtcDateTime)


class Theme(SQLModel, table=True):
    """A portal's theme: the draft being edited and the published one the portal serves."""

    __tablename__ = "themes"

    portal: str = Field(primary_key=True, max_length=100)
    draft: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    published: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(sa_type=UtcDateTime)
