"""Every e-mail of the corpus (`tests/fixtures/mail/`, described in its `cases.toml`) sent over real
SMTP into a running Portico (real NATS, real databases), then read back through the gateway.

Each case is a reply of Ana's to an agent's answer (or a new e-mail to the portal's address, or a
bounce of the answer) and must be posted with exactly the expected text and files, ignored
(automatic mail), refused with the expected SMTP code and reason while storing nothing in any
service, or recorded as a bounce of the answer.
"""

import tomllib
from pathlib import Path

import pytest

from tests.helpers import rows, settled_counts
from tests.kit.mail import eventually, send_raw
from tests.kit.replies import PORTAL_ADDRESS, asked, stored_files
from tests.kit.email import demo, settings, sink  # noqa: F401

CORPUS = Path(__file__).parent.parent / "fixtures" / "mail"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text()) if (CORPUS / "cases.toml").exists() else {}
SERVICES = ("auth", "conversations", "notifications", "kb")


def _prepared(name: str, values: dict[str, str]) -> bytes:
    raw = (CORPUS / name).read_bytes()
    for key, value in values.items():
        raw = raw.replace(f"{{{{{key}}}}}".encode(), value.encode())
    return raw


def _message_id(raw: bytes) -> str:
    from email import message_from_bytes, policy

    return str(message_from_bytes(raw, policy=policy.default).get("Message-ID", "")).strip()


async def _agent_view(demo, cid: str) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.agent.get(f"/api/v1/agent/conversations/{cid}")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_corpus_covers_every_kind_in_several_variants():
    kinds = [case["kind"] for case in CASES.values()]
    assert len(CASES) >= 40, f"{len(CASES)} cases"
    assert all(kinds.count(kind) >= 2 for kind in range(1, 12)), sorted(kinds)
    assert all((CORPUS / name).exists() for name in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_corpus_email_lands_right_or_is_refused_for_the_right_reason(demo, sink, name):
    case = CASES[name]
    cid, mail = await asked(demo, sink)
    values = {"REPLY_ADDRESS": str(mail["Reply-To"]), "ANSWER_MESSAGE_ID": str(mail["Message-ID"]),
              "CONVERSATION_ID": cid, "PORTAL_ADDRESS": PORTAL_ADDRESS,
              "BOUNCE_ADDRESS": sink.envelope_senders[str(mail["Message-ID"])]}
    raw = _prepared(name, values)
    recipient = {"reply": values["REPLY_ADDRESS"], "portal": PORTAL_ADDRESS,
                 "bounce": values["BOUNCE_ADDRESS"]}[case.get("rcpt", "reply")]
    if case.get("closed"):  # the portal's default policy reopens it
        assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    urls = [demo.settings.database_url(s) for s in SERVICES]
    before = (await settled_counts(urls), await stored_files(demo))

    code, text = await send_raw(demo.smtp_port, case.get("envelope_from", "ana@example.com"), [recipient], raw)
    expect = case["expect"]
    if expect == "refused":
        assert code == case["code"], (code, text)
        assert case["reason_contains"] in text, text
        assert (await settled_counts(urls), await stored_files(demo)) == before  # nothing stored anywhere
        return
    assert code == 250, (code, text)
    conversations_db = demo.settings.database_url("conversations")
    if expect == "posted":
        [(landed_in, message_id)] = await eventually(lambda: rows(
            conversations_db, "SELECT conversation_id, message_id FROM inbound_receipts "
                              "WHERE channel = 'email' AND external_message_id = :m", m=_message_id(raw)))
        if case.get("rcpt", "reply") == "reply":
            assert landed_in == cid
        detail = await _agent_view(demo, landed_in)
        [message] = [m for m in detail["messages"] if m["id"] == message_id]
        if case.get("closed"):
            assert detail["conversation"]["status"] == "open"
        assert message["body"] == case["body"]
        assert sorted(a["filename"] for a in message["attachments"]) == sorted(case.get("files", []))
        assert message["author_kind"] == "customer" and message["channel"] == "email"
        return
    if expect == "bounced":
        notifications_db = demo.settings.database_url("notifications")
        [(status, error)] = await eventually(lambda: rows(
            notifications_db, "SELECT status, last_error FROM notifications WHERE email_message_id = :m "
                              "AND status = 'bounced'", m=str(mail["Message-ID"])))
        assert case["bounce_reason_contains"].lower() in (error or "").lower(), error
        timeline = await eventually(lambda: _bounce_shown(demo, cid))
        assert timeline["detail"]["reason"]
        customer_view = (await demo.ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()
        assert all(m.get("event") != "email_bounced" for m in customer_view["conversation"]["messages"])
    # Ignored and bounced mail posts nothing and makes no account or conversation: the conversation
    # still holds only the agent's answer once the events it could have caused are applied.
    after = await settled_counts(urls)
    for service in ("auth",):
        assert after[demo.settings.database_url(service)]["users"] == \
            before[0][demo.settings.database_url(service)]["users"]
    assert after[conversations_db]["conversations"] == before[0][conversations_db]["conversations"]
    # A bounce keeps one receipt (its event, so that a rebuild shows it once); ignored mail keeps none.
    bounce_receipts = 1 if "bounce_reason_contains" in case else 0
    assert after[conversations_db]["inbound_receipts"] == \
        before[0][conversations_db]["inbound_receipts"] + bounce_receipts
    detail = await _agent_view(demo, cid)
    assert [m["channel"] for m in detail["messages"] if m["kind"] == "message" and m["author_kind"] == "customer"] \
        == ["portal"]


async def _bounce_shown(demo, cid: str):  # type: ignore[no-untyped-def]
    detail = await _agent_view(demo, cid)
    return next((m for m in detail["messages"] if m.get("event") == "email_bounced"), None)
