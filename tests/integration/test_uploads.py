"""Multipart messages are refused while they are read, not after: a body over the portal's bound gets
`413 payload_too_large` from its Content-Length alone, or as soon as that many bytes came when it has none;
files are spooled to disk, so a request at the admin's largest limits does not grow the gateway's memory by
the size of its files. Malformed multipart gets a 4xx with a code."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.runtime.nats import free_port
from tests.fixtures.files import sample
from tests.helpers import Gateway, wait_until
from tests.kit.conversations import Demo, ana_conversation, make_demo
from tests.kit.uploads import refusal, stored, upload

MB = 1024 * 1024
# The admin's largest limits: 20 files of 25 MB, 100,000 characters. A body may then be about 525 MB.
LARGEST = {"max_files": 20, "max_file_bytes": 25 * MB, "max_body_chars": 100_000}
# What one over-limit upload may add to the gateway's peak memory (resident set): the parser's spool of a
# file part, one file read to check it, and the allocator's slack; the file itself is 120 MB.
MEMORY_BOUND = 48 * MB
OVERSIZED_FILE = 120 * MB


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


def multipart_head(boundary: str, filename: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nSee attached\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode()


async def file_body(boundary: str, size: int, chunk: int = MB) -> AsyncIterator[bytes]:
    """A multipart body with one file of `size` bytes, produced as it is sent (never held whole)."""
    yield multipart_head(boundary, "big.pdf") + b"%PDF-1.4\n"
    left, block = size - 9, b"0" * chunk
    while left > 0:
        yield block[:min(chunk, left)]
        left -= chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def cookie_header(browser: httpx.AsyncClient) -> str:
    return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


async def raw_request(base_url: str, head: str, body: bytes) -> tuple[int, bytes]:
    """Sends a request head and only `body` (whatever its Content-Length says), then reads the answer."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), timeout=20)  # a guard: the answer comes at once
        status = int(answer.split(b" ", 2)[1])
        return status, answer.split(b"\r\n\r\n", 1)[1]
    finally:
        writer.close()


async def test_a_content_length_over_the_bound_is_refused_before_the_body_is_read(demo: Demo) -> None:
    ana, cid = await ana_conversation(demo)
    await demo.settings_(max_files=1, max_file_bytes=MB)
    before = await stored(demo.settings)
    declared = 2 * MB + 1 + 10_240 * 4 + 64 * 1024   # one byte over room for two files of 1 MB and the text
    head = (f"POST /api/v1/portals/demo/conversations/{cid}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Cookie: {cookie_header(ana)}\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n"
            f"Content-Length: {declared}\r\nConnection: close\r\n")
    # Only the start of the body is sent: the answer must not wait for the rest.
    status, answer = await raw_request(demo.base_url, head, multipart_head("b0undary", "big.pdf"))
    assert status == 413 and b'"payload_too_large"' in answer, answer
    assert await stored(demo.settings) == before
    await ana.aclose()


async def test_a_body_without_length_is_refused_once_it_passes_the_bound(demo: Demo) -> None:
    ana, cid = await ana_conversation(demo)
    await demo.settings_(max_files=1, max_file_bytes=MB)
    before = await stored(demo.settings)
    response = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages",
                              content=file_body("b0undary", 3 * MB),
                              headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert "content-length" not in response.request.headers
    assert refusal(response) == (413, "payload_too_large"), response.text
    assert await stored(demo.settings) == before
    await ana.aclose()


async def test_a_file_over_the_limit_inside_the_bound_is_refused_as_too_large(demo: Demo) -> None:
    ana, cid = await ana_conversation(demo)
    await demo.settings_(max_files=2, max_file_bytes=MB)
    before = await stored(demo.settings)
    response = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages",
                              content=file_body("b0undary", 2 * MB),
                              headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert refusal(response) == (413, "attachment_too_large"), response.text
    assert await stored(demo.settings) == before
    await ana.aclose()


async def test_files_spooled_to_disk_are_stored_whole(demo: Demo) -> None:
    ana, cid = await ana_conversation(demo)
    files = [("scan.pdf", sample("pdf", 2 * MB + 17)), ("photo.png", sample("png", 300_000))]
    response = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages",
                              files=[("body", (None, b"Two files"))] + upload(*files))
    assert response.status_code == 201, response.text
    attachments = response.json()["message"]["attachments"]
    assert [a["size"] for a in attachments] == [len(data) for _, data in files]
    for attachment, (_, data) in zip(attachments, files, strict=True):
        download = await ana.get(f"/api/v1/portals/demo/attachments/{attachment['id']}")
        assert download.status_code == 200 and download.content == data
    await ana.aclose()


async def test_one_file_too_many_is_refused_by_count(demo: Demo) -> None:
    ana, cid = await ana_conversation(demo)
    await demo.settings_(max_files=1)
    before = await stored(demo.settings)
    response = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages",
                              files=[("body", (None, b"Three"))] + upload(*[(f"{n}.png", sample("png"))
                                                                           for n in range(3)]))
    assert refusal(response) == (422, "too_many_attachments"), response.text
    assert await stored(demo.settings) == before
    await ana.aclose()


@pytest.mark.parametrize(("content_type", "body"), [
    ("multipart/form-data", b"--x\r\n"),                                          # no boundary
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nhi\r\n--x--\r\n"),  # no name
    ("multipart/form-data; boundary=x", b"--x\r\nbroken header line\r\n\r\nhi\r\n--x--\r\n"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nhi"),  # no end
    ("multipart/form-data; boundary=x", b"\xff\xfe garbage"),
    ("multipart/form-data; boundary=x; charset=no-such-charset",
     b"--x\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\n\xe9t\xe9\r\n--x\r\n"
     b"Content-Disposition: form-data; name=\"subject\"\r\n\r\nx\r\n--x--\r\n"),   # a part the message lacks
])
async def test_malformed_multipart_gets_a_client_error_with_a_code(demo: Demo, content_type: str,
                                                                    body: bytes) -> None:
    ana, cid = await ana_conversation(demo)
    before = await stored(demo.settings)
    response = await ana.post(f"/api/v1/portals/demo/conversations/{cid}/messages", content=body,
                              headers={"content-type": content_type})
    status, code = refusal(response)
    assert 400 <= status < 500 and code == "invalid_request", response.text
    assert await stored(demo.settings) == before
    await ana.aclose()


# -- memory ------------------------------------------------------------------------------------------

def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM, Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture
async def gateway_process(settings, stack, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The gateway as its own process (`python -m services.gateway`), so that its memory can be read."""
    port = free_port()
    env = {**os.environ, "PORTICO_ENV": "dev", "PORTICO_NATS_URL": settings.nats_url,
           "PORTICO_HTTP_PORT": str(port), "PORTICO_DATA_DIR": str(tmp_path / "gateway"),
           "PORTICO_PUBLIC_URL": f"http://127.0.0.1:{port}", "PORTICO_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env,
                               cwd=Path(__file__).resolve().parents[2])
    gateway = Gateway(f"http://127.0.0.1:{port}")
    try:
        async def answers() -> bool:
            try:
                return (await gateway.client.get("/healthz")).status_code == 200
            except httpx.TransportError:  # not listening yet
                return process.poll() is not None  # ... or gone: the assertion below says so

        await wait_until(answers, timeout=30)
        assert process.poll() is None, "the gateway process ended"
        yield process, gateway
    finally:
        await gateway.client.aclose()
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.timeout(240)
async def test_an_oversized_upload_does_not_grow_the_gateways_memory_by_its_size(  # type: ignore[no-untyped-def]
        settings, gateway_process) -> None:
    process, gateway = gateway_process
    demo = await make_demo(settings, gateway)
    await demo.settings_(**LARGEST)
    ana, cid = await ana_conversation(demo)
    path = f"/api/v1/portals/demo/conversations/{cid}/messages"
    # Warm up: one accepted message with a file, so that what the next request loads is loaded already.
    warm = await ana.post(path, files=[("body", (None, b"Warm up"))] + upload(("a.pdf", sample("pdf", 3 * MB))))
    assert warm.status_code == 201, warm.text
    before = peak_rss(process.pid)

    response = await ana.post(path, content=file_body("b0undary", OVERSIZED_FILE),
                              headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert refusal(response) == (413, "attachment_too_large"), response.text
    grown = peak_rss(process.pid) - before
    assert grown < MEMORY_BOUND, f"the gateway's peak memory grew by {grown / MB:.0f} MB"
    await ana.aclose()
    await demo.admin.aclose()


# -- what the OpenAPI says -------------------------------------------------------------------------

MULTIPART_PARTS = {
    "/api/v1/portals/{portal}/conversations": {"subject", "body", "files"},
    "/api/v1/portals/{portal}/conversations/{conversation_id}/messages": {"body", "reopen", "files"},
    "/api/v1/agent/conversations/{conversation_id}/messages": {"body", "internal", "reopen", "files"},
}


async def test_the_openapi_lists_exactly_the_parts_each_multipart_endpoint_takes(demo: Demo) -> None:
    ana, cid = await ana_conversation(demo)
    spec = (await demo.admin.get("/openapi.json")).json()
    forms = {path: operation["requestBody"]["content"]["multipart/form-data"]["schema"]
             for path, operations in spec["paths"].items() for operation in operations.values()
             if "multipart/form-data" in operation.get("requestBody", {}).get("content", {})}
    assert {path: set(form["properties"]) for path, form in forms.items()} == MULTIPART_PARTS

    # Every part it advertises is taken, all at once.
    for path, form in forms.items():
        parts: list[tuple[str, tuple[str | None, bytes] | tuple[str, bytes, str]]] = []
        for name, prop in form["properties"].items():
            if name == "files":
                parts += upload(("shot.png", sample("png")))
            else:
                parts.append((name, (None, b"false" if prop["type"] == "boolean" else f"A {name}".encode())))
        browser = demo.admin if path.startswith("/api/v1/agent/") else ana
        response = await browser.post(path.format(portal="demo", conversation_id=cid), files=parts)
        assert response.status_code == 201, (path, response.text)
    await ana.aclose()
