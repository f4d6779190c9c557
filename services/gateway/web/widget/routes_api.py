"""The chat widget's JSON routes, for the visitor signed in to the portal (by the frame's bearer session
or the portal's cookie): handing a question over to a person, and writing in that chat.

Both write on the `chat` channel, which these routes choose: the portal's own routes write on `portal`,
and no request names a channel itself. Everything else the frame needs is the portal's JSON API as it
is (`/kb/articles?q=`, `/conversations/{id}`, `/events`, `/session/...`).
"""

import asyncio
import re
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts import operations
from contracts.conversations import ConversationReply, PostedMessage, PostMessage, StartConversation
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import ArticleView, GetArticle
from services.gateway.auth import CustomerViewer
from services.gateway.deps import PortalSlug, Rpc
from services.gateway.routes_conversations import IdempotencyKey
from services.gateway.routes_kb import reader_of
from services.gateway.web.rendering import gettext
from services.runtime.rpc import RpcClient

router = APIRouter(tags=["chat widget"])

SUBJECT_CHARS = 80
MAX_OFFERED = 3
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,199}")  # the form of every article slug (`kb.domain.slugify`)


class HandOver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000, description="What the visitor asked the virtual assistant.",
                          examples=["My invoce is wrong"])
    articles: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=MAX_OFFERED, examples=[["where-is-my-invoice"]],
        description="Slugs of the articles the assistant offered (at most three); the message names them with "
                    "their titles and links.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=1_000_000, description="The text; at most the portal's limit.")


def subject_of(question: str) -> str:
    """The conversation's subject: the question's first line, cut at a word near `SUBJECT_CHARS`."""
    line = " ".join(question.strip().splitlines()[0].split()) if question.strip() else ""
    if len(line) <= SUBJECT_CHARS:
        return line
    cut = line[:SUBJECT_CHARS].rsplit(" ", 1)[0] or line[:SUBJECT_CHARS]
    return cut + "…"


async def _offered(request: Request, rpc: RpcClient, portal: str, slugs: list[str]) -> list[ArticleView]:
    """The offered articles the visitor may read, by slug (one that is gone, hidden or no slug at all is
    left out): their titles come from the knowledge base, never from the request."""
    reader = await reader_of(request)

    async def read(slug: str) -> ArticleView | None:
        try:
            reply = await rpc.call(operations.kb.get_article, GetArticle(reader=reader, portal=portal, slug=slug))
        except ServiceError as error:
            if error.code is ErrorCode.not_found:
                return None
            raise
        return reply.article

    found = await asyncio.gather(*(read(slug) for slug in dict.fromkeys(slugs) if SLUG.fullmatch(slug)))
    return [article for article in found if article is not None]


def first_message(request: Request, portal: str, question: str, articles: list[ArticleView]) -> str:
    """The question, then what the assistant offered, in the visitor's language: the agent sees both."""
    base = str(request.app.state.settings.resolved_public_url).rstrip("/")
    if not articles:
        told = gettext(request, "I asked the virtual assistant first; it found no article on this.")
        return f"{question.strip()}\n\n—\n{told}"
    lines = [f"- {article.title}: {base}/portals/{portal}/kb/{article.slug}" for article in articles]
    offered = gettext(request, "I asked the virtual assistant first. It offered these articles, "
                               "which did not solve it:")
    return f"{question.strip()}\n\n—\n{offered}\n" + "\n".join(lines)


@router.post("/api/v1/portals/{portal}/widget/conversations", status_code=201, response_model=ConversationReply,
             summary="Chat widget: hand the visitor's question over to a person (a conversation on `chat`)")
async def hand_over(body: HandOver, request: Request, response: Response, viewer: CustomerViewer, rpc: Rpc,
                    idempotency_key: IdempotencyKey = None, portal: str = PortalSlug) -> ConversationReply:
    """Opens a conversation on the `chat` channel whose first message is the question and the articles the
    assistant offered (titles and links). Errors as `POST /conversations` (`message_too_long`, ...)."""
    articles = await _offered(request, rpc, portal, body.articles)
    reply = await rpc.call(operations.conversations.start_conversation, StartConversation(
        viewer=viewer, subject=subject_of(body.question), body=first_message(request, portal, body.question, articles),
        idempotency_key=idempotency_key, channel="chat"))
    if reply.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return reply


@router.post("/api/v1/portals/{portal}/widget/conversations/{conversation_id}/messages", status_code=201,
             response_model=PostedMessage,
             summary="Chat widget: write in the chat (a closed one is reopened, or continued as the portal says)")
async def chat_message(body: ChatMessage, response: Response, viewer: CustomerViewer, rpc: Rpc,
                       idempotency_key: IdempotencyKey = None, portal: str = PortalSlug,
                       conversation_id: str = Path(min_length=1, max_length=26)) -> PostedMessage:
    """A message on the `chat` channel; answers go back on it. On a closed conversation the portal's
    reopen policy applies (`conversation_id` of the answer may then be a new, linked conversation)."""
    posted = await rpc.call(operations.conversations.post_message, PostMessage(
        viewer=viewer, conversation_id=conversation_id, body=body.body, reopen=True,
        idempotency_key=idempotency_key, channel="chat"))
    if posted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return posted
