"""Each kb replica holds its own search index: one started later builds it from the database, and each takes
in what any other replica writes (publish, edit, unpublish, delete), typo vocabulary included, from the kb
stream's events."""

import pytest

from services.kb.app import build as build_kb
from services.kb.indexing import indexer_of
from services.runtime.service import Service
from tests.helpers import wait_until
from tests.kit.conversations import make_demo

ARTICLES = "/api/v1/admin/portals/demo/kb/articles"
PUBLIC = frozenset({"public"})


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


def found(replica: Service, *terms: str) -> list[str]:
    hits, _ = indexer_of(replica).index.search(portal="demo", visibilities=PUBLIC, terms=list(terms), category=None,
                                               limit=20, offset=0)
    return [h.article.slug for h in hits]


def corrected(replica: Service, query: str) -> str | None:
    from services.kb.search import correct

    terms, changed = correct(query, indexer_of(replica).index.vocabulary("demo", PUBLIC))
    return " ".join(terms) if changed else None


async def test_every_replica_sees_every_write(demo, stack, settings, start_service):
    first = await demo.admin.post(ARTICLES, json={"title": "Parcel lockers", "body": "Collect a parcel from a "
                                                  "locker with the code we send.", "published": True})
    assert first.status_code == 201, first.text
    # A replica started now builds its index from the database.
    second = await start_service(build_kb, settings)
    replicas = [stack["kb"], second]
    assert all(found(r, "locker") == ["parcel-lockers"] for r in replicas)

    # Writes answered by either replica (the gateway's requests are spread over both) reach both.
    for n in range(4):
        response = await demo.admin.post(ARTICLES, json={"title": f"Warehouse hours {n}", "body": "The warehouse "
                                                         "opens at eight.", "published": True})
        assert response.status_code == 201, response.text
    for replica in replicas:
        await wait_until(lambda replica=replica: len(found(replica, "warehouse")) == 4)
        await wait_until(lambda replica=replica: corrected(replica, "warehuose") == "warehouse")

    edited = await demo.admin.patch(f"{ARTICLES}/parcel-lockers", json={"body": "Lockers now take a QR code."})
    assert edited.status_code == 200, edited.text
    for replica in replicas:
        await wait_until(lambda replica=replica: found(replica, "qr") == ["parcel-lockers"])
        await wait_until(lambda replica=replica: found(replica, "collect") == [])

    hidden = await demo.admin.post(f"{ARTICLES}/warehouse-hours-0/unpublish")
    gone = await demo.admin.delete(f"{ARTICLES}/warehouse-hours-1")
    assert hidden.status_code == 200 and gone.status_code == 200
    for replica in replicas:
        await wait_until(lambda replica=replica: sorted(found(replica, "warehouse")) == ["warehouse-hours-2",
                                                                                         "warehouse-hours-3"])
    for n in (2, 3):
        assert (await demo.admin.delete(f"{ARTICLES}/warehouse-hours-{n}")).status_code == 200
    for replica in replicas:  # no article left with the word: it leaves the vocabulary too
        await wait_until(lambda replica=replica: corrected(replica, "warehuose") is None)


async def test_a_changed_switch_applies_at_once_on_every_replica(demo, stack, settings, start_service):
    """Each replica keeps the portal's switches in memory (`services/kb/portals.py`); a change answered by one
    replica is heard by every other before the admin's answer, so no reader is served the old switches."""
    second = await start_service(build_kb, settings)
    response = await demo.admin.post(ARTICLES, json={"title": "Goodwill credits", "slug": "goodwill",
                                                     "visibility": "internal", "published": True,
                                                     "body": "Agents may grant a goodwill credit."})
    assert response.status_code == 201, response.text
    agent = await demo.staff("agent@demo.example.com", "agent")
    read = "/api/v1/portals/demo/kb/articles/goodwill"

    async def agent_reads() -> set[int]:
        # Enough requests that the queue group gives some to each replica; both replicas keep the portal.
        return {(await agent.get(read)).status_code for _ in range(12)}

    for internal_kb in (True, False, True, False):
        changed = await demo.admin.patch("/api/v1/admin/portals/demo/kb/settings",
                                         json={"portal_for_agents": True, "internal_kb": internal_kb})
        assert changed.status_code == 200, changed.text
        assert await agent_reads() == ({200} if internal_kb else {404}), f"internal_kb={internal_kb}"
    for replica in (stack["kb"], second):
        assert replica.resources["portals"].entries(), "every replica answered readers from its cache"
    await agent.aclose()
