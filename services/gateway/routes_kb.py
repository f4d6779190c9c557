"""The knowledge base as the portal reads it, and the portal's public configuration."""

import asyncio
import hashlib
import json

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from contracts import operations
from contracts.conversations import GetPortalFeatures
from contracts.kb import (
    ArticlePage,
    ArticleReply,
    CategoryList,
    GetArticle,
    GetPortalAppearance,
    ListArticles,
    ListCategories,
    Reader,
)
from contracts.rpc import GetPortalInfo
from services.gateway.auth import read_session
from services.gateway.deps import PortalSlug, Rpc

router = APIRouter(tags=["knowledge base"])


def json_reply(reply: BaseModel) -> Response:
    """`reply` as the JSON body FastAPI would send for it as the route's `response_model`, written in one pass:
    the reply was checked against its model when it was read from the service, so it is not checked again."""
    return Response(reply.__pydantic_serializer__.to_json(reply), media_type="application/json")


async def reader_of(request: Request) -> Reader:
    """Staff see internal articles where the portal allows it; everyone else reads as the public."""
    found = await read_session(request)
    if found is None:
        return Reader(kind="anonymous")
    record = found[1]
    if record.kind == "staff":
        return Reader(kind="staff", org_id=record.org_id, role=record.role)
    return Reader(kind="customer", org_id=record.org_id)


@router.get("/api/v1/portals/{portal}/kb/articles", response_model=ArticlePage,
            summary="Published articles the reader may see; `q` searches (ranked, highlighted, typo-tolerant)")
async def list_articles(request: Request, rpc: Rpc, portal: str = PortalSlug,
                        q: str | None = Query(default=None, max_length=200),
                        category: str | None = Query(default=None, max_length=100),
                        cursor: str | None = Query(default=None, max_length=200),
                        limit: int = Query(default=20, ge=1, le=100)) -> Response:
    page = await rpc.call(operations.kb.list_articles, ListArticles(
        reader=await reader_of(request), portal=portal, q=q, category=category, cursor=cursor, limit=limit))
    return json_reply(page)


@router.get("/api/v1/portals/{portal}/kb/categories", response_model=CategoryList,
            summary="Categories holding a published article the reader may see, with how many")
async def list_categories(request: Request, rpc: Rpc, portal: str = PortalSlug) -> Response:
    return json_reply(await rpc.call(operations.kb.list_categories,
                                     ListCategories(reader=await reader_of(request), portal=portal)))


@router.get("/api/v1/portals/{portal}/kb/articles/{slug}", response_model=ArticleReply,
            summary="One article (a hidden one answers 404, as a missing one does)")
async def get_article(request: Request, rpc: Rpc, portal: str = PortalSlug,
                      slug: str = Path(min_length=1, max_length=200)) -> Response:
    return json_reply(await rpc.call(operations.kb.get_article,
                                     GetArticle(reader=await reader_of(request), portal=portal, slug=slug)))


@router.get("/api/v1/portals/{portal}/config", summary="Everything the web portal needs to render; public, cacheable")
async def portal_config(request: Request, rpc: Rpc, portal: str = PortalSlug) -> Response:
    info = await rpc.call(operations.auth.portal_info, GetPortalInfo(portal=portal))
    appearance, features = await asyncio.gather(
        rpc.call(operations.kb.portal_appearance, GetPortalAppearance(portal=info.slug)),
        rpc.call(operations.conversations.portal_features, GetPortalFeatures(org_id=info.org_id, portal=info.slug)))
    body = {"portal": info.slug, "name": info.name, "kb_id": info.kb_id, "sign_in_methods": info.sign_in_methods,
            "switches": {**appearance.switches, "my_conversations": features.my_conversations_enabled,
                         "reopen": features.reopen_enabled},
            "limits": {"max_body_chars": features.max_body_chars, "max_files": features.max_files,
                       "max_file_bytes": features.max_file_bytes},
            "theme": appearance.theme.model_dump(mode="json") if appearance.theme else None}
    etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "public, max-age=60", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)
