"""The e-mails notifications builds (compat32 API), read back with the stdlib's modern parser as a mail
client would: headers, RFC 2047 encoded names and subjects, folding, transfer encodings and structure."""

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from services.notifications import compose

CID = "01JABCDEFGHJKMNPQRSTVWXYZ0"
URL = f"https://support.example.com/portals/demo/conversations/{CID}"


def reply(**changes: object) -> compose.Reply:
    values: dict[str, object] = dict(
        to="ana@example.com", to_name="Ana", portal="demo", portal_name="Demo support", conversation_id=CID,
        subject="Invoice is wrong", body="We fixed the invoice.", message_id="<01jmsg@reply.example.com>",
        reply_to=f"reply+{CID.lower()}.abcdefgh@reply.example.com", sender="demo@reply.example.com",
        references=[], conversation_url=URL)
    values.update(changes)
    return compose.Reply(**values)  # type: ignore[arg-type]


def built(message: object) -> tuple[bytes, EmailMessage]:
    data = compose.as_bytes(message)  # type: ignore[arg-type]
    return data, message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def head(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def text(mail: EmailMessage, subtype: str) -> str:
    """A part's text with local line ends (a quoted-printable part decodes to the CRLF it was sent with)."""
    return mail.get_body(preferencelist=(subtype,)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


def test_a_reply_is_plain_and_html_alternatives_threaded_with_a_reply_address() -> None:
    references = [f"<m{i}@mail.example.com>" for i in range(25)]
    data, mail = built(compose.reply_email(reply(references=references)))
    assert mail["Subject"] == f"Re: Invoice is wrong [#{CID}]"
    assert mail["From"].addresses[0].display_name == "Demo support"
    assert mail["From"].addresses[0].addr_spec == "demo@reply.example.com"
    assert mail["To"].addresses[0].addr_spec == "ana@example.com" and mail["To"].addresses[0].display_name == "Ana"
    assert mail["Reply-To"] == f"reply+{CID.lower()}.abcdefgh@reply.example.com"
    assert mail["Message-ID"] == "<01jmsg@reply.example.com>"
    assert mail["In-Reply-To"] == "<m24@mail.example.com>"
    assert str(mail["References"]).split() == references[-20:]  # the newest 20 (RFC 5322 3.6.4)
    assert mail["Date"].datetime is not None and mail["MIME-Version"] == "1.0"
    assert "Auto-Submitted" not in mail  # a person wrote it (RFC 3834)
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    plain = mail.get_body(preferencelist=("plain",))
    rich = mail.get_body(preferencelist=("html",))
    assert plain.get_content_charset() == rich.get_content_charset() == "utf-8"  # type: ignore[union-attr]
    assert "We fixed the invoice." in plain.get_content() and URL in plain.get_content()  # type: ignore[union-attr]
    assert f'<a href="{URL}">' in rich.get_content()  # type: ignore[union-attr]
    assert not mail.defects and all(not p.defects for p in mail.walk())
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))  # folded headers, encoded bodies
    assert data.isascii()  # no 8BITMIME needed
    assert head(data).count(b"MIME-Version") == 1


def test_non_ascii_names_and_long_subjects_are_rfc2047_encoded_and_folded() -> None:
    subject = "Facture erronée — merci de vérifier la commande numéro 4242 et l’adresse de livraison à Zürich " * 2
    data, mail = built(compose.reply_email(reply(
        to_name="Ana Müller-Lüdenscheidt", portal_name="Démo support, Inc.", subject=subject.strip(),
        body="Grüße aus Köln — 118,00 €\nZweite Zeile.")))
    assert head(data).isascii() and b"=?utf-8?" in head(data)
    assert mail["Subject"] == f"Re: {subject.strip()} [#{CID}]"
    assert mail["From"].addresses[0].display_name == "Démo support, Inc."
    assert mail["To"].addresses[0].display_name == "Ana Müller-Lüdenscheidt"
    assert mail["To"].addresses[0].addr_spec == "ana@example.com"
    assert all(len(line) <= 78 for line in head(data).split(b"\r\n"))
    for part in mail.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    plain = text(mail, "plain")
    assert "Grüße aus Köln — 118,00 €\nZweite Zeile." in plain and "Démo support, Inc." in plain
    rich = text(mail, "html")
    assert "Grüße aus Köln — 118,00 €<br>\nZweite Zeile." in rich


def test_ascii_text_with_short_lines_goes_as_7bit_and_long_lines_as_quoted_printable() -> None:
    _, short = built(compose.reply_email(reply(conversation_url="https://x.example/c")))
    assert short.get_body(preferencelist=("plain",))["Content-Transfer-Encoding"] == "7bit"  # type: ignore[index]
    long_line = "word " * 40
    _, long = built(compose.reply_email(reply(body=long_line)))
    plain = long.get_body(preferencelist=("plain",))
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"  # type: ignore[index]
    assert long_line in text(long, "plain")


@pytest.mark.parametrize("body", ["--=_ looks like a boundary\n.\n. a dot line", "From the start\n\n=3D"])
def test_bodies_that_look_like_markup_come_back_unchanged(body: str) -> None:
    _, mail = built(compose.reply_email(reply(body=body)))
    assert text(mail, "plain").startswith(body + "\n")
    assert len(list(mail.iter_parts())) == 2


def test_a_subject_or_name_with_a_line_break_cannot_add_a_header() -> None:
    data, mail = built(compose.reply_email(reply(subject="Hi\r\nBcc: eve@example.com", to_name="Ana\nBcc: x@y")))
    assert "Bcc" not in mail and not re.search(rb"^Bcc:", head(data), re.MULTILINE)
    assert mail["To"].addresses[0].addr_spec == "ana@example.com"


def test_an_access_code_email_is_one_auto_generated_text_part() -> None:
    data, mail = built(compose.plain_email(to="code@example.com", subject="Your code: 123456",
                                           text="Your code is 123456.\nIt expires in 10 minutes.",
                                           sender="demo@reply.example.com", sender_name="Portico",
                                           message_id="<code@reply.example.com>"))
    assert mail["Auto-Submitted"] == "auto-generated" and mail["To"] == "code@example.com"
    assert mail["From"].addresses[0].display_name == "Portico" and mail["Subject"] == "Your code: 123456"
    assert mail["Message-ID"] == "<code@reply.example.com>" and mail["MIME-Version"] == "1.0"
    assert mail.get_content_type() == "text/plain" and mail.get_content_charset() == "utf-8"
    assert text(mail, "plain") == "Your code is 123456.\nIt expires in 10 minutes.\n"
    assert head(data).count(b"MIME-Version") == 1 and not mail.defects
