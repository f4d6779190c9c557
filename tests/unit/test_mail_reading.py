"""How Portico reads an inbound e-mail (`services.notifications.reading`), over the corpus of
issue 10 (`tests/fixtures/mail/`, written by `make_corpus.py`): no NATS, no database.

For each message, what its case in `cases.toml` says must happen: the exact text posted, automatic
mail recognised, bounces recognised with their reason, over-limit text measured as refused.
"""

import tomllib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from contracts.conversations import MessageLimits
from services.notifications import reading

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
CASES: dict[str, dict] = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))
ANSWER_ID = "<answer-01JNB7Q0Z8X4M2V6K9T3R5W1YH@reply.localhost>"
CONVERSATION_ID = "01JNB7Q0Z8X4M2V6K9T3R5W1YH"
PLACEHOLDERS = {
    b"{{REPLY_ADDRESS}}": b"reply+01jnb7q0z8x4m2v6k9t3r5w1yh.abcdefgh@reply.localhost",
    b"{{ANSWER_MESSAGE_ID}}": ANSWER_ID.encode(),
    b"{{CONVERSATION_ID}}": CONVERSATION_ID.encode(),
    b"{{BOUNCE_ADDRESS}}": b"bounce+01jnb7q0z8x4m2v6k9t3r5w1yj.abcdefgh@reply.localhost",
    b"{{PORTAL_ADDRESS}}": b"demo@reply.localhost",
}
LIMITS = MessageLimits(max_body_chars=10_240, max_files=6, max_file_bytes=3 * 1024 * 1024)


def load(name: str) -> EmailMessage:
    raw = (CORPUS / name).read_bytes()
    for placeholder, value in PLACEHOLDERS.items():
        raw = raw.replace(placeholder, value)
    assert b"{{" not in raw, f"{name} has a placeholder the test does not know"
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def posted(message: EmailMessage) -> tuple[str, list[str], list[str]]:
    """What inbound.py posts for an accepted e-mail: (text, files attached, sentences of files dropped)."""
    post = reading.posting(message, max_files=LIMITS.max_files, max_file_bytes=LIMITS.max_file_bytes)
    return post.text, [checked.filename for checked, _ in post.files], post.dropped


def cases(*expect: str) -> list[str]:
    return sorted(name for name, case in CASES.items() if case["expect"] in expect)


def envelope_sender(case: dict) -> str:
    return case.get("envelope_from", "ana@example.com")


def test_the_corpus_covers_every_kind_in_several_variants():
    files = sorted(path.name for path in CORPUS.glob("*.eml"))
    assert files == sorted(CASES), "every .eml has its case in cases.toml, and every case its file"
    assert len(files) >= 48
    kinds = [case["kind"] for case in CASES.values()]
    assert {kind: kinds.count(kind) for kind in range(1, 12) if kinds.count(kind) < 1} == {}
    assert all(kinds.count(kind) >= 2 for kind in (1, 2, 3, 4, 5, 6, 7, 9, 11))


@pytest.mark.parametrize("name", cases("posted"))
def test_posted_mail_gives_exactly_the_text_the_customer_wrote(name):
    case, message = CASES[name], load(name)
    assert reading.bounce_of(message, envelope_sender(case)) is None
    assert reading.automatic_reason(message, is_reply=case["rcpt"] == "reply") is None
    body, files, dropped = posted(message)
    if not dropped and not reading.files_of(message).forwarded:
        assert reading.body_text(message) == case["body"]
    assert body == case["body"]
    assert files == case.get("files", [])
    assert len(body) <= LIMITS.max_body_chars


@pytest.mark.parametrize("name", cases("ignored"))
def test_automatic_mail_is_recognised(name):
    case, message = CASES[name], load(name)
    assert reading.bounce_of(message, envelope_sender(case)) is None
    assert reading.automatic_reason(message, is_reply=case["rcpt"] == "reply") is not None


@pytest.mark.parametrize("name", cases("bounced"))
def test_bounces_are_recognised_with_their_reason_and_the_answer_they_are_about(name):
    case, message = CASES[name], load(name)
    bounce = reading.bounce_of(message, envelope_sender(case))
    assert bounce is not None
    assert case["bounce_reason_contains"] in bounce.reason
    assert bounce.recipient in (None, "ana@example.com")
    if case["rcpt"] != "bounce":   # no VERP address to match by: the report must name the answer
        assert ANSWER_ID in bounce.original_message_ids


@pytest.mark.parametrize("name", cases("refused"))
def test_refused_mail_is_neither_automatic_nor_a_bounce_and_says_why(name):
    case, message = CASES[name], load(name)
    assert reading.bounce_of(message, envelope_sender(case)) is None
    assert reading.automatic_reason(message, is_reply=case["rcpt"] == "reply") is None
    body, _, dropped = posted(message)
    if case["code"] == 552:
        assert len(body) > LIMITS.max_body_chars   # inbound answers 552 with the limit in its text
    if not reading.body_text(message):
        assert any(case["reason_contains"] in sentence for sentence in dropped)


def test_a_reply_over_the_limit_keeps_only_the_new_text_in_the_count():
    body = reading.body_text(load("57-short-reply-long-quote.eml"))
    assert body == "Short answer: yes, it works now."


# -- decode_bytes, charset by charset ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "charset", "data"), [
    ("Grüße", "utf-8", "Grüße".encode()),
    ("Grüße", "iso-8859-1", "Grüße".encode("latin-1")),
    ("it’s 12€ – “ok”", "iso-8859-1", "it’s 12€ – “ok”".encode("cp1252")),   # labelled Latin-1, written 1252
    ("it’s 12€", "windows-1252", "it’s 12€".encode("cp1252")),
    ("①再起動～", "shift_jis", "①再起動～".encode("cp932")),
    ("再起動しました", "iso-2022-jp", "再起動しました".encode("iso-2022-jp")),
    ("打印机已经修好了", "gb2312", "打印机已经修好了".encode("gb2312")),
    ("Принтер работает", "koi8-r", "Принтер работает".encode("koi8-r")),
    ("Tak for hjælpen", "us-ascii", "Tak for hjælpen".encode()),               # 8-bit bytes labelled ASCII
    ("Grüße aus Köln, der Drucker läuft wieder.", None, "Grüße aus Köln, der Drucker läuft wieder.".encode()),
    ("Le problème est réglé, merci à l'équipe très efficace.", None,
     "Le problème est réglé, merci à l'équipe très efficace.".encode("latin-1")),
    ("La impresora ya funciona después de cambiar el cartucho, señora García.", "unknown-8bit",
     "La impresora ya funciona después de cambiar el cartucho, señora García.".encode("cp1252")),
    ("Olá, obrigada!", "x-user-defined", "Olá, obrigada!".encode()),
])
def test_decode_bytes_reads_each_charset(text, charset, data):
    assert reading.decode_bytes(data, charset) == text


def test_decode_bytes_never_raises_on_bytes_no_charset_can_read():
    text = reading.decode_bytes(b"ok \xff\xfe\xfd end", "unknown-8bit")
    assert text.startswith("ok ") and text.endswith(" end")


# -- html_to_text -------------------------------------------------------------------------------------

def test_html_inline_elements_join_into_one_line():
    assert reading.html_to_text("<p>The error code is <b>E-42</b> on page <i>3</i>.</p>").strip() == \
        "The error code is E-42 on page 3."


def test_html_lists_and_links_keep_their_meaning():
    text = reading.html_to_text('<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol>'
                                '<p>See <a href="https://example.com/a">the manual</a>.</p>')
    assert reading.clean(text) == "* one\n* two\n1. first\n\nSee the manual (https://example.com/a)."


def test_outlook_paragraphs_are_lines_and_its_empty_paragraphs_blank_lines():
    html = ('<p class="MsoNormal">Hi,<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
            '<p class="MsoNormal">line one<o:p></o:p></p><p class="MsoNormal">line two<o:p></o:p></p>')
    assert reading.clean(reading.html_to_text(html)) == "Hi,\n\nline one\nline two"


def test_an_out_of_office_with_a_null_envelope_sender_is_automatic_not_a_bounce():
    message = EmailMessage()
    message["From"] = "ana@example.com"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("I am away until Monday.")
    assert reading.bounce_of(message, "") is None  # RFC 3834 3.3 advises the null sender for these
    assert reading.automatic_reason(message, is_reply=True) == "Auto-Submitted: auto-replied"
