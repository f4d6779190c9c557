"""Reading an inbound e-mail: its text in any charset, the new part of a reply (quoted thread and
signature cut, in any language), whether it is automatic mail or a bounce, and its files.

Pure functions of the parsed message: no database, no NATS. `inbound.py` decides what to do.
"""

import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

import charset_normalizer
import tnefparse
from bs4 import BeautifulSoup, Tag
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage as ReplyText

from services.runtime.files import CheckedFile, FileRefused, check_file

# -- charsets ----------------------------------------------------------------------------------------

# Labels mail clients use for a superset, decoded as the superset (as browsers do, WHATWG Encoding):
# text labelled ISO-8859-1 or US-ASCII is in practice Windows-1252 (curly quotes at 0x93/0x94).
CHARSET_SUPERSETS = {
    "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "iso8859-1": "cp1252", "iso-8859-9": "cp1254", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949", "tis-620": "cp874", "iso-8859-11": "cp874",
}
# Charsets an unlabelled part is tried in, commonest in mail first (ties go to the earlier one).
DETECTABLE = ("utf_8", "cp1252", "cp1251", "koi8_r", "cp1250", "cp932", "euc_jp", "iso2022_jp", "gb18030", "big5",
              "cp949", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp874", "iso8859_15", "iso8859_2")
# Controls that are never text: dropped from what is posted (a message may hold newlines and tabs).
_CONTROLS = dict.fromkeys(c for c in range(32) if c not in (9, 10)) | {0x7F: None}


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of a MIME part's decoded bytes.

    A declared charset Python knows is used (or its superset, see `CHARSET_SUPERSETS`), with
    U+FFFD for bytes it cannot map. No charset, or one nobody knows (`unknown-8bit`, `x-user-defined`):
    UTF-8 when the bytes are valid UTF-8, else the charset charset-normalizer detects, else UTF-8
    with replacement characters. Never raises.
    """
    label = (charset or "").strip().strip('"').lower()
    if label in ("us-ascii", "ascii") or not label:
        try:  # 8-bit bytes in a part labelled ASCII (or unlabelled) are most often UTF-8
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if label:
        try:
            codec = codecs.lookup(CHARSET_SUPERSETS.get(label, label)).name
        except LookupError:
            codec = None
        if codec is not None and label not in ("us-ascii", "ascii"):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = list(charset_normalizer.from_bytes(data, cp_isolation=list(DETECTABLE)))
    if candidates:  # least chaos, then most coherent language, then the commoner charset
        best = min(candidates, key=lambda match: (round(match.chaos, 2), -round(match.coherence, 2),
                                                  DETECTABLE.index(match.encoding)
                                                  if match.encoding in DETECTABLE else len(DETECTABLE)))
        return str(best)
    return data.decode("utf-8", errors="replace")


def part_text(part: Message) -> str:
    """A text part's content as str, whatever its charset and transfer encoding; `format=flowed`
    text (Thunderbird, Apple Mail) has its soft line breaks joined (RFC 3676)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload()).encode("utf-8", errors="replace")
    text = decode_bytes(payload, part.get_param("charset"))  # type: ignore[arg-type]
    if part.get_content_type() == "text/plain" and str(part.get_param("format", "")).lower() == "flowed":
        text = unflow(text, delsp=str(part.get_param("delsp", "")).lower() == "yes")
    return text


def unflow(text: str, *, delsp: bool = False) -> str:
    """RFC 3676 `format=flowed` text as paragraphs: a line ending in a space goes on with the next
    line of the same quote depth; space-stuffing is removed; "-- " (a signature separator) is never
    flowed. With `delsp`, the space that marks a soft break is removed too."""
    out: list[str] = []
    flowing: tuple[int, str] | None = None   # (quote depth, text so far) of a paragraph going on
    for raw in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        line = line[1:] if line.startswith(" ") else line   # space-stuffing
        if flowing is not None and flowing[0] != depth:  # a quote depth change ends a paragraph
            out.append(">" * flowing[0] + (" " if flowing[0] else "") + flowing[1])
            flowing = None
        joined = (flowing[1] if flowing else "") + line
        if line.endswith(" ") and line != "-- ":
            flowing = (depth, joined[:-1] if delsp else joined)
            continue
        out.append(">" * depth + (" " if depth else "") + joined)
        flowing = None
    if flowing is not None:
        out.append(">" * flowing[0] + (" " if flowing[0] else "") + flowing[1])
    return "\n".join(out)


def header_text(message: Message, name: str) -> str:
    """A header as one line of text; a header that cannot be decoded gives its raw form."""
    try:
        value = message.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:  # a broken encoded word: keep what the sender wrote
        raw = message.get_all(name, failobj=[]) if hasattr(message, "get_all") else []
        return " ".join(" ".join(str(v) for v in raw).split())


def clean(text: str) -> str:
    """Line ends as `\\n`, no control characters, no trailing spaces, at most one empty line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").translate(_CONTROLS)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# -- HTML --------------------------------------------------------------------------------------------

# Where mail clients put the earlier thread in HTML: Gmail, Apple Mail, Thunderbird, Yahoo.
HTML_QUOTES = ("div.gmail_quote, blockquote.gmail_quote, blockquote[type=cite], div.moz-cite-prefix, "
               "div.yahoo_quoted, div#mail-editor-reference-message-container")
# Outlook (desktop, web, new Outlook): the earlier thread is everything from here on.
OUTLOOK_QUOTE_START = "#divRplyFwdMsg, #appendonsend, hr#stopSpelling, div.OutlookMessageHeader"
# Older Outlook desktop starts the quoted header block with a top-bordered div.
_OUTLOOK_BORDER = re.compile(r"border:\s*none;\s*border-top:\s*solid", re.I)
# Outlook (Word engine) writes each line as a paragraph of one of these classes, with no margin.
_OUTLOOK_LINE = re.compile(r"^Mso(Normal|ListParagraph\w*|PlainText|NoSpacing)$")
QUOTE_MARK = "\u2063porticoquote\u2063"   # stands for a removed quote until the text is cut
_HTML = ParserConfig(css=CSS_PROFILES["strict"], display_links=False)


def html_to_text(content: str) -> str:
    """Text of an HTML body: inline elements join, block elements (p, div, br, li, tr, headings)
    break lines, list items keep a bullet or number, and a link keeps its address after its text.
    The earlier thread is replaced by a quote mark for `cut_quoted`."""
    soup = BeautifulSoup(content, "html.parser")
    for unwanted in soup(["script", "style", "head", "title"]):
        unwanted.decompose()
    start = soup.select_one(OUTLOOK_QUOTE_START) or soup.find(
        lambda t: isinstance(t, Tag) and t.name == "div" and bool(_OUTLOOK_BORDER.search(str(t.get("style", "")))))
    if start is not None:
        for later in list(start.find_all_next()):
            later.decompose()
        start.replace_with(_mark(soup))
    for quote in soup.select(HTML_QUOTES):
        if quote.parent is not None:
            quote.replace_with(_mark(soup))
    for paragraph in soup.find_all("p", class_=_OUTLOOK_LINE):
        paragraph.name = "div"   # Outlook's Word engine sets these paragraphs' margins to 0: one line each
        if not paragraph.get_text().strip():   # "<o:p>&nbsp;</o:p>": an empty line
            paragraph.clear()
            paragraph.append(soup.new_tag("br"))
    for link in soup.find_all("a", href=True):
        href = str(link["href"]).strip()
        label = link.get_text(" ", strip=True)
        if href.lower().startswith(("http://", "https://")) and label and label.rstrip("/") != href.rstrip("/"):
            link.append(f" ({href})")
    text = get_text(str(soup), _HTML)
    return "\n".join(line.strip() for line in text.split("\n"))


def _mark(soup: BeautifulSoup) -> Tag:
    mark = soup.new_tag("div")
    mark.string = QUOTE_MARK
    return mark


# -- cutting the quoted thread -----------------------------------------------------------------------

# Outlook's header block over the quoted message, in the languages of the common mail clients:
# the "From" line, then "Sent", "To", "Subject", "Date" or "Cc" lines.
FROM_WORDS = ("From|Von|De|Da|Van|Från|Fra|Lähettäjä|Od|Feladó|Kimden|От|Від|Από|差出人|送信者|发件人|寄件者|"
              "보낸\\s?사람|De la|Frá|Saatja|Nuo|Šalje|Pošiljatelj|Pengirim|Dari|Từ|จาก|מאת|من")
HEADER_WORDS = ("Sent|Date|To|Cc|Subject|Gesendet|Datum|An|Betreff|Envoyé|Date|À|A|Objet|Enviado|Enviada|Fecha|"
                "Para|Asunto|Assunto|Data|Inviato|Oggetto|Verzonden|Aan|Onderwerp|Skickat|Till|Ämne|Kopia|"
                "Sendt|Dato|Til|Emne|Kopi|Lähetetty|Vastaanottaja|Aihe|Kopio|Wysłano|Do|Temat|DW|Odesláno|"
                "Komu|Předmět|Kopie|Elküldve|Címzett|Tárgy|Gönderildi|Kime|Konu|Tarih|Bilgi|Отправлено|Кому|"
                "Тема|Дата|Копия|Надіслано|Στάλθηκε|Προς|Θέμα|送信日時|宛先|件名|日付|发送时间|收件人|主题|"
                "日期|抄送|傳送時間|收件者|主旨|副本|보낸\\s?날짜|받는\\s?사람|제목|참조|Trimis|Către|Subiect|"
                "Dikirim|Kepada|Perihal|Subjek|Đã gửi|Đến|Chủ đề|ส่ง|ถึง|เรื่อง|נשלח|אל|נושא|أرسل|إلى|الموضوع")
_COLON = r"[ \t\u00a0\u202f]*[:：]"
_FROM_LINE = re.compile(rf"^[>\s*]*(?:{FROM_WORDS}){_COLON}", re.I)
_HEADER_LINE = re.compile(rf"^[>\s*]*(?:{HEADER_WORDS}){_COLON}", re.I)
# "-----Original Message-----" and its translations, and Outlook's line of underscores.
_SEPARATOR = re.compile(r"^[>\s]*(?:-{3,}\s*[^-\n]{2,60}?\s*-{3,}|_{10,})\s*$")
_ORIGINAL = re.compile(r"original|ursprüngliche|d'origine|originale|oorspronkelijk|ursprungligt|oprindelig|"
                       r"opprinnelig|alkuperäinen|oryginalna|původní|исходное|元のメッセージ|原始邮件|原始郵件", re.I)
_FORWARD = re.compile(r"forward|weitergeleitet|transféré|reenviado|inoltrato|doorgestuurd|vidarebefordrat|"
                      r"videresendt|encaminhad|転送|转发|переслан", re.I)
_QUOTED = re.compile(r"^\s*>")
_FORWARD_START = re.compile(r"^\s*(?:-{3,}.*(?:" + _FORWARD.pattern + r").*-{3,}|Begin forwarded message:|"
                            r"Anfang der weitergeleiteten Nachricht:|Début du message réexpédié :)\s*$", re.I)
_ATTRIBUTION_END = re.compile(r"[:：]\s*$")
_LANGUAGES = list(MAIL_LANGUAGES)


def _is_header_block(lines: list[str], at: int) -> bool:
    """An Outlook-style header block starts at `at`: a "From" line and two more header lines."""
    if not _FROM_LINE.match(lines[at]):
        return False
    following = [line for line in lines[at + 1:at + 8] if line.strip()]
    return sum(1 for line in following[:6] if _HEADER_LINE.match(line)) >= 2


def _only_quoted_after(lines: list[str], at: int) -> bool:
    rest = [line for line in lines[at:] if line.strip()]
    return bool(rest) and all(_QUOTED.match(line) or QUOTE_MARK in line for line in rest)


def _cut_point(lines: list[str]) -> int | None:
    """Index of the first line of the earlier thread, or None when the text quotes nothing."""
    for i, line in enumerate(lines):
        if QUOTE_MARK in line:
            return i
        if _SEPARATOR.match(line):
            ahead = next((later for later in lines[i + 1:i + 4] if later.strip()), "")
            forward = _FORWARD.search(line) and not _ORIGINAL.search(line)
            if not forward and (_ORIGINAL.search(line) or _is_header_block(lines, lines.index(ahead, i + 1))
                                if ahead else _ORIGINAL.search(line)):
                return i
        if _is_header_block(lines, i):
            earlier = next((j for j in range(i - 1, max(-1, i - 4), -1) if lines[j].strip()), None)
            if earlier is not None and _FORWARD.search(lines[earlier]):
                continue  # a message the customer forwards on purpose: part of what they write
            return i
        if _QUOTED.match(line) and _only_quoted_after(lines, i):
            return i
        if _ATTRIBUTION_END.search(line) and len(line) <= 300 and _only_quoted_after(lines, i + 1):
            # "On <date>, <name> wrote:" in any language, over the quoted lines; a short last line
            # ("wrote:") is the end of an attribution a mail client wrapped.
            if len(line.split()) <= 3 and i > 0 and lines[i - 1].strip():
                return i - 1
            return i
    return None


# A signature is a short closing and a few lines (name, company, phone); more than this, or a postscript
# after the closing, is something the customer wrote and is kept.
SIGNATURE_MAX_LINES = 8
_POSTSCRIPT = re.compile(r"^\s*P\.?\s?S\b", re.I)


def _is_signature(cut: str) -> bool:
    lines = [line for line in cut.split("\n") if line.strip()]
    closing_is_short = not lines or len(lines[0].split()) <= 4   # "Kind regards," not a sentence
    return (closing_is_short and len(lines) <= SIGNATURE_MAX_LINES
            and not any(_POSTSCRIPT.match(line) for line in lines))


def cut_quoted(text: str) -> str:
    """The new part of a reply's text: the quoted earlier thread, the "wrote:" line over it and the
    signature cut off (a closing such as "Thanks," with at most `SIGNATURE_MAX_LINES` lines and no
    postscript; a longer tail is kept, so no words are lost). The header forms of every language mail-parser-reply knows are cut, and
    Outlook's header block in the languages of the common mail clients (`FROM_WORDS`)."""
    lines = clean(text).split("\n")
    cut = _cut_point(lines)
    if cut is not None:
        lines = lines[:cut]
    lines = [line for line in lines if QUOTE_MARK not in line]
    # A message forwarded on purpose is part of what the customer writes: kept whole.
    forward = next((i for i, line in enumerate(lines) if _FORWARD_START.match(line)), len(lines))
    own, forwarded = "\n".join(lines[:forward]).strip(), "\n".join(lines[forward:]).strip()
    if own:
        replies = ReplyText(text=own, languages=_LANGUAGES, keep_hyphen_lists=True).read().replies
        reply = next((reply for reply in replies if reply.body.strip()), None)
        if reply is None:
            own = ""
        elif _is_signature(reply.signatures or ""):
            own = reply.body
        else:  # what the library took for a signature holds more words: keep them all
            own = reply.content
    return clean(f"{own}\n\n{forwarded}")


def body_text(message: EmailMessage) -> str:
    """The text a customer wrote in this e-mail (plain part preferred, else HTML), quote cut."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part_text(part)
    if part.get_content_type() == "text/html":
        content = html_to_text(content)
    return cut_quoted(content)


# -- automatic mail and bounces ----------------------------------------------------------------------

_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated", "X-Mail-Autoreply",
                 "X-FC-MachineGenerated", "X-Auto-Reply", "X-Autoresponse")
_BULK_PRECEDENCE = {"auto_reply", "auto-reply", "bulk", "junk", "list"}
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|mail-delivery-subsystem|"
                      r"microsoftexchange[0-9a-f]*|bounces?)$", re.I)


def automatic_reason(message: Message, *, is_reply: bool) -> str | None:
    """Why this e-mail was written by a machine (out-of-office, autoresponder, list), or None.

    Headers mail systems use for it: RFC 3834 `Auto-Submitted` (any value but `no`), `X-Autoreply`,
    `X-Autorespond` and kin, `Precedence: auto_reply|bulk|junk|list` (RFC 2076), Microsoft's
    `X-Auto-Response-Suppress`, and on a reply to a conversation `List-Id`/`List-Unsubscribe`
    (RFC 2919, 2369).
    """
    submitted = header_text(message, "Auto-Submitted").lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {submitted[:40]}"
    for name in _AUTO_HEADERS:
        value = header_text(message, name).lower()
        if name in message and value not in ("no", "false", "0"):
            return name
    precedence = header_text(message, "Precedence").lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    suppress = header_text(message, "X-Auto-Response-Suppress").lower()
    if suppress and any(word in suppress for word in ("all", "oof", "autoreply", "dr", "rn", "nrn")):
        return "X-Auto-Response-Suppress"
    if is_reply and ("List-Id" in message or "List-Unsubscribe" in message):
        return "mailing list"
    return None


@dataclass
class Bounce:
    """A delivery status notification (RFC 3464) or a plain-text bounce."""

    original_message_ids: list[str] = field(default_factory=list)
    recipient: str | None = None
    reason: str = "the mail server did not deliver it"


_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_MESSAGE_ID_LINE = re.compile(r"^\s*>?\s*Message-ID:\s*(<[^<>\s]+>)", re.I | re.M)


def sender_address(message: Message) -> str:
    """The first address of `From`, or "" when it has none."""
    found = [address for _, address in getaddresses([header_text(message, "From")]) if "@" in address]
    return found[0] if found else ""


def bounce_of(message: EmailMessage, envelope_sender: str) -> Bounce | None:
    """The bounce this e-mail is, or None: a null envelope sender (RFC 5321 4.5.5), a `From` of
    MAILER-DAEMON or postmaster, or a `multipart/report; report-type=delivery-status` (RFC 3464)."""
    local = sender_address(message).rpartition("@")[0]
    report = (message.get_content_type() == "multipart/report"
              and str(message.get_param("report-type", "")).lower() == "delivery-status")
    null_sender = envelope_sender.strip() in ("", "<>")
    says_bounce = report or bool(_DAEMONS.match(local)) or "X-Failed-Recipients" in message
    if not (null_sender or says_bounce):
        return None
    if not says_bounce and automatic_reason(message, is_reply=False):
        return None  # an out-of-office sent with a null sender, as RFC 3834 3.3 advises: automatic, not a bounce
    bounce = Bounce()
    ids: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            _read_status(part, bounce)
        elif kind in ("message/rfc822", "message/global"):
            inner = part.get_payload(0) if part.is_multipart() else None
            if isinstance(inner, Message) and inner.get("Message-ID"):
                ids += _MESSAGE_ID.findall(str(inner.get("Message-ID")))
        elif kind in ("text/rfc822-headers", "message/rfc822-headers", "text/plain"):
            text = part_text(part)
            ids += _MESSAGE_ID_LINE.findall(text)
            if kind == "text/plain" and bounce.reason == Bounce.reason:
                bounce.reason = _first_reason(text) or bounce.reason
    ids += _MESSAGE_ID.findall(f"{header_text(message, 'In-Reply-To')} {header_text(message, 'References')}")
    failed = header_text(message, "X-Failed-Recipients")
    if failed and not bounce.recipient:
        bounce.recipient = failed.split(",")[0].strip().lower()
    bounce.original_message_ids = list(dict.fromkeys(ids))
    return bounce


def _read_status(part: Message, bounce: Bounce) -> None:
    """Final-Recipient and Diagnostic-Code (or Status) of an RFC 3464 report."""
    fields: dict[str, str] = {}
    for block in part.get_payload() if part.is_multipart() else []:
        if isinstance(block, Message):
            for name, value in block.items():
                fields.setdefault(name.lower(), " ".join(str(value).split()))
    if not fields:  # some parsers leave the report as text
        raw = part_text(part)
        for line in raw.splitlines():
            name, _, value = line.partition(":")
            if value:
                fields.setdefault(name.strip().lower(), value.strip())
    recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
    if recipient:
        bounce.recipient = recipient.rpartition(";")[2].strip().lower() or None
    diagnostic = fields.get("diagnostic-code", "").partition(";")[2].strip()
    status = fields.get("status", "")
    if diagnostic or status:
        bounce.reason = (diagnostic or f"status {status}")[:300]


# An SMTP reply or enhanced status code in a bounce's text: "550 5.1.1 ...", "(#5.1.1)", "5.2.2".
_STATUS_LINE = re.compile(r"\(#[45]\.\d{1,3}\.\d{1,3}\)|\b[45]\.\d{1,3}\.\d{1,3}\b")
# Where a plain-text bounce starts quoting the e-mail it returns.
_COPY_START = re.compile(r"^\s*-*\s*(?:Below this line is a copy|This is a copy of the message|"
                         r"Original message follows|The original message)", re.I)


def _first_reason(text: str) -> str:
    """What went wrong, from a plain-text bounce: the first line with an SMTP status code (RFC 3463
    enhanced status, as qmail, Exim and Postfix write it) before the copy of the returned e-mail,
    else its first lines."""
    lines = []
    for line in text.splitlines():
        if _COPY_START.match(line):
            break
        if line.strip() and not line.startswith(">"):
            lines.append(line.strip())
    for line in lines:
        if _STATUS_LINE.search(line) and not re.match(r"^(arrival|last-attempt)", line, re.I):
            return line[:300]
    useful = [line for line in lines if not re.match(r"^(this is|hi|hello|i'm sorry to|the original)", line, re.I)]
    return " ".join((useful or lines)[:2])[:300]


# -- files -------------------------------------------------------------------------------------------

TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}


@dataclass
class MailFiles:
    """The files of an e-mail, unpacked: (name, bytes) to check, the text of forwarded e-mails to
    quote, and files that could not even be read (name, reason)."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def files_of(message: EmailMessage) -> MailFiles:
    """Attachments, with Outlook's `winmail.dat` (TNEF) unpacked into the files it carries and an
    attached e-mail (`message/rfc822`) turned into quoted text plus its own files."""
    found = MailFiles()
    for part in message.iter_attachments():
        kind = part.get_content_type()
        name = _filename(part)
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload(0) if part.is_multipart() else None
            if isinstance(inner, Message):
                inner = BytesParser(policy=policy.default).parsebytes(inner.as_bytes())
                found.forwarded.append(_forwarded_text(inner))  # type: ignore[arg-type]
                for inner_name, data in ((_filename(p), p.get_payload(decode=True) or b"")
                                         for p in inner.iter_attachments()):  # type: ignore[attr-defined]
                    found.files.append((inner_name, data))
            continue
        data = part.get_payload(decode=True) or b""
        if kind in TNEF_TYPES or name.lower() == "winmail.dat":
            try:
                tnef = tnefparse.TNEF(data)
                broken = not all(attachment.data for attachment in tnef.attachments)
            except Exception:
                broken = True
            if broken:  # a cut-off winmail.dat parses into files without their bytes: say what it is
                found.unreadable.append((name, "an Outlook winmail.dat file that could not be read"))
                continue
            for attachment in tnef.attachments:
                inner_name = attachment.long_filename() or attachment.name or "attachment"
                if isinstance(inner_name, bytes):
                    inner_name = decode_bytes(inner_name, None)
                found.files.append((str(inner_name).strip("\x00"), attachment.data))
            continue
        found.files.append((name, data))
    return found


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return unicodedata.normalize("NFC", str(name)).strip() if name else "attachment"


def _forwarded_text(inner: EmailMessage) -> str:
    lines = ["---------- Forwarded message ----------"]
    for name in ("From", "Date", "Subject", "To"):
        value = header_text(inner, name)
        if value:
            lines.append(f"{name}: {value}")
    part = inner.get_body(preferencelist=("plain", "html"))
    text = ""
    if part is not None:
        text = part_text(part)
        text = clean(html_to_text(text).replace(QUOTE_MARK, "") if part.get_content_type() == "text/html" else text)
    return "\n".join(lines) + "\n\n" + text


@dataclass
class Posting:
    """What an accepted e-mail posts: `written` (the customer's text and any forwarded e-mail, which
    the portal's `max_body_chars` applies to), `files` to store (checked), and `dropped` (a sentence
    for each file not attached). `text` is what is posted: `written` with the dropped files named."""

    written: str
    files: list[tuple[CheckedFile, bytes]]
    dropped: list[str]

    @property
    def text(self) -> str:
        if not self.dropped:
            return self.written
        note = "Files not attached:\n" + "\n".join(f"- {sentence}" for sentence in self.dropped)
        return f"{self.written or '(files attached)'}\n\n{note}"


def posting(message: EmailMessage, *, max_files: int, max_file_bytes: int) -> Posting:
    """The text and files an e-mail posts, its files held to the portal's limits (count, bytes per
    file) and the content checks of portal uploads (`services.runtime.files.check_file`). A file that
    fails is dropped and named with its reason; one bad file never costs the text or the others."""
    found = files_of(message)
    written = "\n\n".join(part for part in [body_text(message), *found.forwarded] if part.strip())
    accepted: list[tuple[CheckedFile, bytes]] = []
    dropped = [f'"{name}" is {why}.' for name, why in found.unreadable]
    for name, data in found.files:
        shown = clean(name)[:100] or "attachment"
        if len(accepted) >= max_files:
            dropped.append(f'"{shown}" was not attached: at most {max_files} files are allowed.')
        elif len(data) > max_file_bytes:
            dropped.append(f'"{shown}" is {len(data):,} bytes; at most {max_file_bytes:,} are allowed.')
        else:
            try:
                accepted.append((check_file(name, data), data))
            except FileRefused as exc:
                dropped.append(exc.message)
    return Posting(written=written, files=accepted, dropped=dropped)
