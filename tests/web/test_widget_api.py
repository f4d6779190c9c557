"""What the chat widget needs of the HTTP API, against the real gateway and services (no browser): a
session token sent as a bearer beside API keys, sign-ins that answer with the token only when asked,
the hand-over on the `chat` channel, and the SDK and frame with their caching and embedding policies.
"""

import httpx

from contracts.sessions import SESSION_COOKIE
from tests.kit.email import demo, settings, sink  # noqa: F401  (fixtures)
from tests.kit.widget import knowledge_base, token

SESSION = "/api/v1/session"
SSO = "/api/v1/portals/demo/session/sso"
HAND_OVER = "/api/v1/portals/demo/widget/conversations"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_a_session_token_is_a_bearer_beside_api_keys_and_the_cookie_logins_stay_as_they_were(demo) -> None:
    async with httpx.AsyncClient(base_url=demo.base_url) as client:
        anonymous = await client.post("/api/v1/portals/demo/session/anonymous", json={"bearer": True})
        assert anonymous.status_code == 200 and "set-cookie" not in anonymous.headers
        anon_token = anonymous.json()["session_token"]
        assert anon_token.startswith("ps_") and anonymous.json()["method"] == "anonymous"
        assert (await client.get(SESSION, headers=bearer(anon_token))).json()["kind"] == "anonymous"

        signed = await client.post(SSO, json={"token": token(demo.secret, "hal@example.com"), "bearer": True})
        assert signed.status_code == 200 and "set-cookie" not in signed.headers
        hal = signed.json()["session_token"]
        listed = await client.get("/api/v1/portals/demo/conversations", headers=bearer(hal))
        assert listed.status_code == 200 and listed.json()["conversations"] == []

        # Without `bearer`: the cookie, as before, and no token in the body.
        cookie_login = await client.post(SSO, json={"token": token(demo.secret, "ida@example.com")})
        assert cookie_login.status_code == 200 and "session_token" not in cookie_login.json()
        assert SESSION_COOKIE in cookie_login.headers["set-cookie"] and cookie_login.json()["role"] is None
        async with httpx.AsyncClient(base_url=demo.base_url) as fresh:
            started = await fresh.post("/api/v1/portals/demo/session/email", json={"email": "jo@example.com"})
            assert started.status_code == 202 and set(started.json()) == {"portal", "status"}
            assert SESSION_COOKIE in started.headers["set-cookie"]
        async with httpx.AsyncClient(base_url=demo.base_url) as fresh:
            unverified = await fresh.post("/api/v1/portals/demo/session/email",
                                          json={"email": "jo@example.com", "bearer": True})
            assert unverified.status_code == 202 and unverified.json()["session_token"].startswith("ps_")
            assert "set-cookie" not in unverified.headers

        # The bearer wins over the cookie; ending it leaves the cookie's session alone.
        assert (await client.get(SESSION, headers=bearer(hal))).json()["email"] == "hal@example.com"
        ended = await client.delete(SESSION, headers=bearer(hal))
        assert ended.status_code == 200 and ended.json() == {"ended": True} and "set-cookie" not in ended.headers
        assert (await client.get(SESSION, headers=bearer(hal))).status_code == 401
        assert (await client.get(SESSION)).json()["email"] == "ida@example.com"

        # API keys and staff sessions, as bearers, keep working; a customer's session is no staff.
        assert (await client.get("/api/v1/admin/portals/demo", headers=bearer(
            "pk_test_key_for_the_demo_org_0123456789"))).status_code == 200
        refused = await client.get("/api/v1/admin/portals/demo", headers=bearer(anon_token))
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        gone = await client.get("/api/v1/agent/conversations", headers=bearer("ps_" + "x" * 43))
        assert gone.status_code == 401 and "session has ended" in gone.json()["message"]  # not read as a key
        assert (await client.get("/api/v1/admin/portals/demo", headers=bearer("pk_nope"))).status_code == 401
    staff_token = demo.agent.cookies[SESSION_COOKIE]
    async with httpx.AsyncClient(base_url=demo.base_url) as client:
        inbox = await client.get("/api/v1/agent/conversations", headers=bearer(staff_token))
        assert inbox.status_code == 200, inbox.text


async def test_the_hand_over_opens_a_chat_conversation_naming_what_the_assistant_offered(demo) -> None:
    await knowledge_base(demo)
    async with httpx.AsyncClient(base_url=demo.base_url) as client:
        visitor = (await client.post("/api/v1/portals/demo/session/anonymous", json={"bearer": True})).json()
        me = bearer(visitor["session_token"])
        assert (await client.post(HAND_OVER, json={"question": "hi"})).status_code == 401
        too_many = await client.post(HAND_OVER, headers=me, json={"question": "q", "articles": ["a", "b", "c", "d"]})
        assert too_many.status_code == 422
        chosen = await client.post(HAND_OVER, headers=me, json={"question": "q", "channel": "email"})
        assert chosen.status_code == 422  # the route chooses the channel, never the request
        opened = await client.post(HAND_OVER, headers=me, json={
            "question": "Where is my invoce?\nI need it for taxes",
            "articles": ["where-is-my-invoice", "internal-issuing-a-goodwill-credit", "no-such-article"]})
        assert opened.status_code == 201, opened.text
        conversation = opened.json()["conversation"]
        assert conversation["channel"] == "chat" and conversation["subject"] == "Where is my invoce?"
        body = conversation["messages"][0]["body"]
        assert body.startswith("Where is my invoce?\nI need it for taxes") and "- Where is my invoice?: " in body
        assert "goodwill" not in body.lower() and "no-such-article" not in body  # hidden and missing: left out

        cid = conversation["id"]
        posted = await client.post(f"{HAND_OVER}/{cid}/messages", headers=me, json={"body": "Any news?"})
        assert posted.status_code == 201 and posted.json()["message"]["channel"] == "chat"
        # The portal's own route stays on `portal`, and takes no channel either.
        portal = await client.post("/api/v1/portals/demo/conversations", headers=me,
                                   json={"subject": "s", "body": "b", "channel": "chat"})
        assert portal.status_code == 422
        plain = await client.post("/api/v1/portals/demo/conversations", headers=me, json={"subject": "s", "body": "b"})
        assert plain.json()["conversation"]["channel"] == "portal"
    closed = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")
    assert closed.status_code == 200, closed.text
    async with httpx.AsyncClient(base_url=demo.base_url) as client:
        again = await client.post(f"{HAND_OVER}/{cid}/messages", headers=me, json={"body": "Still broken"})
        assert again.status_code == 201 and again.json()["reopened"] is True  # a chat goes on where it was
    detail = (await demo.agent.get(f"/api/v1/agent/conversations/{cid}")).json()["conversation"]
    assert detail["status"] == "open" and detail["reply_channel"] == "chat"


async def test_the_sdk_and_the_frame_are_served_with_their_versions_and_embedding_policy(demo) -> None:
    allowed = "https://shop.example.com"
    response = await demo.admin.patch("/api/v1/admin/portals/demo/settings", json={"widget_origins": [allowed]})
    assert response.status_code == 200, response.text
    async with httpx.AsyncClient(base_url=demo.base_url) as client:
        sdk = await client.get("/widget/portico-chat.js")
        assert sdk.status_code == 200 and sdk.headers["content-type"].startswith("text/javascript")
        assert "window.PorticoChat" in sdk.text and sdk.headers["cache-control"] == "public, max-age=3600"
        version = sdk.headers["x-portico-widget-version"]
        pinned = await client.get(f"/widget/portico-chat.js?v={version}")
        assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert (await client.get("/widget/portico-chat.js", headers={"If-None-Match": sdk.headers["etag"]})
                ).status_code == 304
        types = await client.get("/widget/portico-chat.d.ts")
        assert types.status_code == 200 and "sso: PorticoChat.Sso" in types.text and "@example" in types.text

        frame = await client.get("/widget/frame", params={"portal": "demo", "host": allowed, "locale": "de-CH"})
        assert frame.status_code == 200 and 'data-host="https://shop.example.com"' in frame.text
        policy = frame.headers["content-security-policy"]
        ancestors = next(part for part in policy.split("; ") if part.startswith("frame-ancestors "))
        assert ancestors.split()[1] == "'self'" and allowed in ancestors.split() and "unsafe-inline" not in policy
        assert "evil" not in ancestors
        assert frame.headers["content-language"] == "de"
        for host in ("https://evil.example.com", "", "null", "javascript:alert(1)"):
            refused = await client.get("/widget/frame", params={"portal": "demo", "host": host})
            assert refused.status_code == 403 and "evil" not in refused.headers["content-security-policy"], host
            assert "data-host" not in refused.text
        missing = await client.get("/widget/frame", params={"portal": "nope", "host": allowed})
        assert missing.status_code == 404 and "frame-ancestors 'self'" in missing.headers["content-security-policy"]
        # The portal's own pages carry the same widget.
        home = await client.get("/portals/demo/")
        assert '<script src="/widget/portico-chat.js" data-portal="demo"' in home.text

        spec = (await client.get("/openapi.json")).json()
        assert "session_token" in spec["components"]["schemas"]["OpenedSession"]["properties"]
        assert "bearer" in spec["components"]["schemas"]["SsoBody"]["properties"]
        paths = "/api/v1/portals/{portal}/widget/conversations"
        assert paths in spec["paths"] and paths + "/{conversation_id}/messages" in spec["paths"]
