"""Portal message limits through the gateway, each at its edge and one past it: at most 10,240
characters (not bytes), not blank, at most 6 files of at most 3 MB each, of nine types checked by
content. A refused message stores nothing: no message, no attachment row, no Object Store object."""

import json
from collections.abc import Awaitable

import httpx
import pytest

from contracts.errors import HTTP_STATUS, ErrorCode
from services.runtime.settings import Settings
from tests.fixtures.files import REFUSED, VALID, sample
from tests.kit.conversations import ana_conversation, make_demo
from tests.kit.uploads import refusal, stored, upload

MB = 1024 * 1024
LIMIT = 10_240


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


async def send(browser: httpx.AsyncClient, cid: str, body: str = "See attached",
               files: list[tuple[str, bytes]] | None = None, multipart: bool = False) -> httpx.Response:
    """A message as the portal sends it: JSON without files, multipart with them (or when asked)."""
    path = f"/api/v1/portals/demo/conversations/{cid}/messages"
    if files or multipart:  # `body` as a part of its own: httpx sends `data` alone url-encoded
        return await browser.post(path, files=[("body", (None, body.encode()))] + upload(*(files or [])))
    return await browser.post(path, json={"body": body})


async def send_json(browser: httpx.AsyncClient, cid: str, body: str, *, ascii_only: bool) -> httpx.Response:
    """JSON spelt one way or the other: characters as raw UTF-8, or as `\\uXXXX` escapes (a character
    outside the BMP then takes a surrogate pair, twelve bytes)."""
    return await browser.post(f"/api/v1/portals/demo/conversations/{cid}/messages",
                              content=json.dumps({"body": body}, ensure_ascii=ascii_only).encode(),
                              headers={"content-type": "application/json"})


def accepted(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()["message"]


async def assert_refused_and_nothing_stored(settings: Settings, request: Awaitable[httpx.Response],
                                            status: int, code: str) -> None:
    """Sends `request` (not yet awaited) and checks the refusal, and that nothing new is stored."""
    before = await stored(settings)
    response = await request
    assert refusal(response) == (status, code), response.text
    assert response.json()["message"], "an error says what went wrong"
    assert await stored(settings) == before


# -- the body ----------------------------------------------------------------------------------------

async def test_a_body_of_exactly_the_limit_is_accepted_and_one_character_more_is_refused(demo, settings):
    ana, cid = await ana_conversation(demo)
    assert accepted(await send(ana, cid, "a" * LIMIT))["body"] == "a" * LIMIT
    await assert_refused_and_nothing_stored(settings, send(ana, cid, "a" * (LIMIT + 1)), 422, "message_too_long")
    await assert_refused_and_nothing_stored(settings, send(ana, cid, "a" * (LIMIT + 1), multipart=True),
                                            422, "message_too_long")


async def test_the_limit_counts_characters_not_bytes(demo, settings):
    ana, cid = await ana_conversation(demo)
    accents = "é" * LIMIT              # 20,480 bytes in UTF-8
    emoji = "😀" * LIMIT               # 40,960 bytes in UTF-8; 122,880 bytes as JSON escapes
    assert accepted(await send(ana, cid, accents, multipart=True))["body"] == accents
    assert accepted(await send_json(ana, cid, emoji, ascii_only=False))["body"] == emoji
    assert accepted(await send_json(ana, cid, emoji, ascii_only=True))["body"] == emoji
    await assert_refused_and_nothing_stored(settings, send(ana, cid, accents + "é", multipart=True),
                                            422, "message_too_long")
    await assert_refused_and_nothing_stored(settings, send_json(ana, cid, emoji + "😀", ascii_only=False),
                                            422, "message_too_long")
    await assert_refused_and_nothing_stored(settings, send_json(ana, cid, emoji + "😀", ascii_only=True),
                                            422, "message_too_long")
    detail = (await ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
    assert [len(m["body"]) for m in detail["messages"][1:]] == [LIMIT, LIMIT, LIMIT]


@pytest.mark.parametrize("blank", ["", " ", "\n\t \r\n"], ids=["empty", "space", "whitespace"])
async def test_a_blank_body_is_refused(demo, settings, blank):
    ana, cid = await ana_conversation(demo)
    await assert_refused_and_nothing_stored(settings, send(ana, cid, blank), 422, "message_empty")
    # with a file the body is still required: the file is not kept either
    await assert_refused_and_nothing_stored(settings, send(ana, cid, blank, files=[("a.png", sample("png"))]),
                                            422, "message_empty")


# -- files -------------------------------------------------------------------------------------------

def pngs(n: int) -> list[tuple[str, bytes]]:
    return [(f"shot-{i}.png", sample("png", 200 + i)) for i in range(n)]   # n different small files


async def test_six_files_are_accepted_and_seven_refused(demo, settings):
    ana, cid = await ana_conversation(demo)
    before = await stored(settings)
    message = accepted(await send(ana, cid, files=pngs(6)))
    assert sorted(a["filename"] for a in message["attachments"]) == [f"shot-{i}.png" for i in range(6)]
    assert len((await stored(settings)).objects - before.objects) == 6
    await assert_refused_and_nothing_stored(settings, send(ana, cid, files=pngs(7)), 422, "too_many_attachments")


async def test_a_file_of_exactly_3_mb_is_accepted_and_one_byte_more_refused(demo, settings):
    ana, cid = await ana_conversation(demo)
    edge = sample("png", 3 * MB)
    [attachment] = accepted(await send(ana, cid, files=[("big.png", edge)]))["attachments"]
    assert attachment["size"] == 3 * MB
    downloaded = await ana.get(f"/api/v1/portals/demo/attachments/{attachment['id']}")
    assert downloaded.status_code == 200 and downloaded.content == edge
    await assert_refused_and_nothing_stored(settings, send(ana, cid, files=[("big.png", sample("png", 3 * MB + 1))]),
                                            413, "attachment_too_large")


async def test_a_file_of_exactly_3_mb_is_accepted_whatever_its_type(demo):
    ana, cid = await ana_conversation(demo)
    refused = []
    for name, _, _ in VALID:
        data = sample(name.rsplit(".", 1)[1], 3 * MB)
        response = await send(ana, cid, files=[(name, data)])
        if response.status_code != 201 or response.json()["message"]["attachments"][0]["size"] != 3 * MB:
            refused.append((name, response.status_code, response.text[:200]))
    assert refused == []


async def test_the_largest_message_allowed_goes_through(demo, settings):
    """Six files of 3 MB and 10,240 four-byte characters: every limit at once, none passed."""
    ana, cid = await ana_conversation(demo)
    files = [(f"scan-{i}.png", sample("png", 3 * MB - i)) for i in range(6)]
    message = accepted(await send(ana, cid, "😀" * LIMIT, files=files))
    assert len(message["body"]) == LIMIT
    assert sorted(a["size"] for a in message["attachments"]) == sorted(len(data) for _, data in files)
    assert len((await stored(settings)).objects) == 6


async def test_seven_full_size_files_are_refused_as_too_many(demo, settings):
    """What a customer attaching seven phone photos does; they should be told there are too many files."""
    ana, cid = await ana_conversation(demo)
    files = [(f"photo-{i}.png", sample("png", 3 * MB - i)) for i in range(7)]
    await assert_refused_and_nothing_stored(settings, send(ana, cid, files=files), 422, "too_many_attachments")


async def test_each_allowed_type_is_accepted_and_downloads_as_sent(demo):
    ana, cid = await ana_conversation(demo)
    failures = []
    for name, data, content_type in VALID:
        response = await send(ana, cid, files=[(name, data)])
        if response.status_code != 201:
            failures.append((name, "refused", response.text[:200]))
            continue
        [attachment] = response.json()["message"]["attachments"]
        if (attachment["content_type"], attachment["size"], attachment["filename"]) != (content_type, len(data), name):
            failures.append((name, "listed as", attachment))
        downloaded = await ana.get(f"/api/v1/portals/demo/attachments/{attachment['id']}")
        headers = downloaded.headers
        got = (downloaded.status_code, downloaded.content == data, headers.get("content-type", "").split(";")[0],
               headers.get("content-disposition", "").split(";")[0], headers.get("x-content-type-options"))
        if got != (200, True, content_type, "attachment", "nosniff"):
            failures.append((name, "downloaded as", got))
    assert failures == []


async def test_every_refused_file_is_refused_with_its_code_and_nothing_is_stored(demo, settings):
    ana, cid = await ana_conversation(demo)
    before = await stored(settings)
    failures = []
    for name, data, code in REFUSED:
        response = await send(ana, cid, files=[(name, data)])
        expected = (HTTP_STATUS[ErrorCode(code)], code)
        if refusal(response) != expected:
            failures.append((name, expected, response.status_code, response.text[:200]))
        if (now := await stored(settings)) != before:
            failures.append((name, "stored something", now))
            before = now
    assert failures == []


async def test_one_bad_file_refuses_the_whole_message(demo, settings):
    ana, cid = await ana_conversation(demo)
    name, data, code = next(case for case in REFUSED if case[0] == "pe-renamed.pdf")
    await assert_refused_and_nothing_stored(
        settings, send(ana, cid, files=[("fine.png", sample("png")), (name, data), ("fine.pdf", sample("pdf"))]),
        HTTP_STATUS[ErrorCode(code)], code)


# -- limits changed by the admin ---------------------------------------------------------------------

async def test_limits_changed_by_the_admin_apply_at_their_new_edges(demo, settings):
    ana, cid = await ana_conversation(demo)
    changed = await demo.settings_(max_files=2, max_body_chars=100, max_file_bytes=1000)
    assert (changed["max_files"], changed["max_body_chars"], changed["max_file_bytes"]) == (2, 100, 1000)

    accepted(await send(ana, cid, "b" * 100))
    await assert_refused_and_nothing_stored(settings, send(ana, cid, "b" * 101), 422, "message_too_long")
    assert len(accepted(await send(ana, cid, files=pngs(2)))["attachments"]) == 2
    await assert_refused_and_nothing_stored(settings, send(ana, cid, files=pngs(3)), 422, "too_many_attachments")
    accepted(await send(ana, cid, files=[("edge.csv", sample("csv", 1000))]))
    await assert_refused_and_nothing_stored(settings, send(ana, cid, files=[("edge.csv", sample("csv", 1001))]),
                                            413, "attachment_too_large")
    # a new conversation is held to them too
    started = await ana.post("/api/v1/portals/demo/conversations", json={"subject": "Long", "body": "c" * 101})
    assert refusal(started) == (422, "message_too_long")


async def test_the_highest_body_limit_an_admin_can_set_is_reachable_in_json(demo, settings):
    """100,000 characters is the most `max_body_chars` takes; such a message must get through as JSON,
    however the client spells its characters."""
    ana, cid = await ana_conversation(demo)
    await demo.settings_(max_body_chars=100_000)
    body = "😀" * 100_000
    assert len(accepted(await send_json(ana, cid, body, ascii_only=False))["body"]) == 100_000
    assert len(accepted(await send_json(ana, cid, body, ascii_only=True))["body"]) == 100_000
    await assert_refused_and_nothing_stored(settings, send_json(ana, cid, body + "a", ascii_only=False),
                                            422, "message_too_long")


# -- file names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent, shown", [
    ("../../../etc/passwd.png", "passwd.png"),
    ("..\\..\\Windows\\System32\\evil.png", "evil.png"),
    ("/var/www/html/index.png", "index.png"),
    ("....//....//hidden.png", "hidden.png"),
    ("..", "attachment.png"),
], ids=["unix", "windows", "absolute", "doubled-dots", "only-dots"])
async def test_a_file_name_with_a_path_comes_back_as_a_plain_name(demo, sent, shown):
    ana, cid = await ana_conversation(demo)
    [attachment] = accepted(await send(ana, cid, files=[(sent, sample("png"))]))["attachments"]
    assert attachment["filename"] == shown
    detail = (await ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
    assert [a["filename"] for a in detail["messages"][-1]["attachments"]] == [shown]
    downloaded = await ana.get(f"/api/v1/portals/demo/attachments/{attachment['id']}")
    assert f'filename="{shown}"' in downloaded.headers["content-disposition"]


