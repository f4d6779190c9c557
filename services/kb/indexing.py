"""Each kb replica's search index (`services.kb.search.SearchIndex`): built from the database at start,
refreshed by the replica's own writes before they are answered, and by every article event on the kb
stream, so that a replica sees what any other one wrote.

The events are read with an ordered consumer of this replica's own (not the shared durable one that spreads
work over replicas: every replica needs every event), from the moment the replica starts: the rebuild that
follows the subscription covers all that came before. Events only name the articles; the refresh reads
their rows, so an event delivered twice or out of order changes nothing.
"""

import asyncio
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from sqlmodel import Session

from contracts.envelope import EventEnvelope
from contracts.events import ArticlePublished, ArticleUnpublished
from contracts.subjects import STREAMS, stream_subjects
from services.kb.search import SearchIndex
from services.runtime.db import READ_ONLY
from services.runtime.logging import get_logger
from services.runtime.service import Service

log = get_logger("portico.kb.search")

ARTICLE_EVENTS = {ArticlePublished.type_name(), ArticleUnpublished.type_name()}
HEARTBEAT_SECONDS = 5.0


class Indexer:
    """Feeds one replica's `SearchIndex`: the articles named by events wait in `pending` and are refreshed
    together, one refresh at a time (a burst of events costs one index commit, not one each)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.index = SearchIndex()
        self.pending: set[str] = set()
        self._wake = asyncio.Event()
        self._subscription: Any = None

    def _session(self) -> Session:
        return Session(self.service.engine.execution_options(**READ_ONLY))

    async def start(self, service: Service) -> None:
        js = service.broker.config.connection_state.stream
        self._subscription = await js.subscribe(
            stream_subjects("kb"), stream=STREAMS["kb"], cb=self._on_event, ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_SECONDS, deliver_policy=DeliverPolicy.NEW)

        def rebuild() -> int:
            with self._session() as session:
                return self.index.rebuild(session)

        log.info("search index built", articles=await asyncio.to_thread(rebuild))

    async def stop(self, service: Service) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription: Any = None

    async def _on_event(self, msg: Msg) -> None:
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
        except ValueError:
            return
        if envelope.type in ARTICLE_EVENTS:
            self.pending.add(envelope.aggregate_id)
            self._wake.set()

    async def refresh(self, article_ids: set[str]) -> None:
        """Refresh these articles now (a write of this replica, before it is answered)."""
        def run() -> int:
            with self._session() as session:
                return self.index.refresh(session, article_ids)

        await asyncio.to_thread(run)

    async def follow(self, service: Service) -> None:
        """Refresh, for as long as the service runs, the articles the events named."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids, self.pending = self.pending, set()
            try:
                await self.refresh(ids)
            except Exception as exc:  # the database away for a moment: keep them for the next round
                log.warning("search index refresh failed", error=repr(exc), articles=len(ids))
                self.pending |= ids
                await asyncio.sleep(1.0)
                self._wake.set()


def install(service: Service) -> Indexer:
    """Give the service its search index (`service.resources["search"]`), kept current as described above."""
    indexer = Indexer(service)
    service.resources["search"] = indexer
    service.on_start(indexer.start)
    service.on_stop(indexer.stop)
    service.background(indexer.follow)
    return indexer


def indexer_of(service: Service) -> Indexer:
    """The replica's `Indexer` (its `.index` is the `SearchIndex`), as `install` gave it."""
    indexer: Indexer = service.resources["search"]
    return indexer
