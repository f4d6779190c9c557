"""Inbound channel messages, signed as a provider's adapter signs them."""

import hashlib
import hmac
import json
import time
import uuid
import httpx


async def channel_secret(demo) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.admin.post("/api/v1/admin/channels/secret")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["org_id"] and len(body["secret"]) >= 32
    return body


def message(email: str = "wa.customer@example.com", thread: str | None = "thread-1", body: str = "Hi, my order?",
            **extra: object) -> dict:
    payload: dict = {"portal": "demo", "external_message_id": f"ext-{uuid.uuid4().hex}", "thread_id": thread,
                     "customer": {"email": email, "display_name": "Wanda Customer"},
                     "subject": "Order 7 is late", "body": body}
    payload.update(extra)
    return payload


def signature(secret: str, timestamp: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


def signed(org_id: str, secret: str, payload: dict | bytes, *, timestamp: int | None = None) -> dict:
    """httpx keyword arguments for a signed request: the exact bytes that were signed, and the headers."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"content": raw, "headers": {"Content-Type": "application/json", "X-Portico-Org": org_id,
                                        "X-Portico-Timestamp": ts, "X-Portico-Signature": signature(secret, ts, raw)}}


async def deliver(demo, channel: str, org_id: str, secret: str, payload: dict) -> dict:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=20) as provider:
        response = await provider.post(f"/api/v1/channels/{channel}/inbound", **signed(org_id, secret, payload))
    assert response.status_code == 200, response.text
    return response.json()
