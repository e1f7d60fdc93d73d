"""The email itself: headers (List-Id, List-Unsubscribe, ...) and a multipart/alternative body.

render ─► message ─► delivery: a MessageTemplate per segment, then build() per subscriber.

Two paths produce the same message. `build_message` is the slow, obviously correct reference made
with `EmailMessage`; `MessageTemplate.build` joins prebuilt bytes and is what delivery uses. The
tests parse both with the stdlib parser and compare headers and decoded bodies.

Both bodies are encoded by transfer_encoding (quoted-printable or base64, CRLF lines, why
each). The sign-up confirmation email is built in confirmation_email.
"""

from __future__ import annotations

import binascii
import dataclasses
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from functools import cached_property
from typing import TYPE_CHECKING

from digest.addresses import address_domain, clean_name, parse_from_address
from digest.errors import BadInputError, InvalidAddressError
from digest.mail.transfer_encoding import (
    CRLF,
    Base64Pieces,
    QuotedPrintablePieces,
    choose_encoding,
    normalise_lines,
)
from digest.render.renderer import PLACEHOLDERS

if TYPE_CHECKING:
    from digest.render.renderer import RenderedSegment, Renderer
    from digest.settings import DigestSettings, Settings


_PLACEHOLDER_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")


class FillIn:
    """A body cut at its placeholders once, so each subscriber's copy is one join of bytes.

    Same result as personalise's one-pass substitution (a value is never expanded again),
    without scanning the whole body, or encoding it to UTF-8, per subscriber.
    """

    def __init__(self, text: str) -> None:
        pieces = _PLACEHOLDER_SPLIT.split(text)
        self._static = [piece.encode("utf-8") for piece in pieces]  # placeholders: replaced
        self._keys = pieces[1::2]

    def fill(self, values: dict[str, str]) -> bytes:
        """The body's UTF-8 bytes with each placeholder replaced by its value."""
        pieces = self._static.copy()
        pieces[1::2] = [values[key].encode("utf-8") for key in self._keys]
        return b"".join(pieces)

    @cached_property
    def _base64(self) -> Base64Pieces:
        return Base64Pieces(self._static[::2])

    @cached_property
    def _qp(self) -> QuotedPrintablePieces:
        return QuotedPrintablePieces(self._static[::2])

    def fill_base64(self, values: dict[str, str]) -> bytes:
        """encode_base64(fill(values)), its fixed lines encoded once (transfer_encoding)."""
        return self._base64.encode([values[key].encode("utf-8") for key in self._keys])

    def fill_qp(self, values: dict[str, str]) -> bytes:
        """encode_qp(fill(values)), its fixed lines encoded once (transfer_encoding)."""
        return self._qp.encode([values[key].encode("utf-8") for key in self._keys])


# Headers are folded at 78 where they can be; List-Unsubscribe must never be RFC 2047-encoded,
# which Python's 78-column policy does to a long value (odoo#289182).
SMTP_POLICY = policy.SMTP.clone(max_line_length=998)
MAX_LINE = 998
_ATEXT_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$")
_BAD_ADDRESS = re.compile(r"[\x00-\x20\x7f<>()\[\],;:\\\"\u2028\u2029]")
_BAD_URI = re.compile(r"[^\x21-\x7e]|[<>]")
_ENCODED_WORD_BYTES = 45  # "=?utf-8?b?" + base64(45 bytes) + "?=" is 72 chars, under RFC 2047's 75


@dataclass(frozen=True)
class BuiltMessage:
    """One subscriber's message, ready for SMTP DATA (CRLF line ends)."""

    message_id: str
    data: bytes
    # data as SMTP DATA carries it (dot-stuffed, RFC 5321 4.5.2); often the same object.
    wire: bytes


def _idna(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _check_uri(uri: str, what: str) -> str:
    if not uri or _BAD_URI.search(uri):
        raise BadInputError(f"{what} {uri!r} contains spaces, control characters or <>")
    return uri


def _check_address(address: str) -> str:
    if "@" not in address or _BAD_ADDRESS.search(address):
        raise InvalidAddressError(f"{address!r} is not a bare email address for a header")
    return address


def _clean(name: str) -> str:
    try:
        return clean_name(name)
    except ValueError as exc:
        raise InvalidAddressError(str(exc)) from None


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 base64 encoded-words, each at most 75 characters.

    Splits go just after a space where there is one: the stdlib parser (unlike RFC 2047 and mail
    clients) keeps the folding whitespace between two encoded-words of a display name, and a
    seam after a space then costs at most a doubled space instead of one inside a word.
    """
    words: list[str] = []
    chunk = ""
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > _ENCODED_WORD_BYTES:
            cut = chunk.rfind(" ") + 1 or len(chunk)
            words.append(_b_word(chunk[:cut].encode("utf-8")))
            chunk = chunk[cut:]
            size = len(chunk.encode("utf-8"))
        chunk += char
        size += width
    if chunk:
        words.append(_b_word(chunk.encode("utf-8")))
    return words


def _b_word(raw: bytes) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(raw, newline=False).decode("ascii") + "?="


def phrase(text: str) -> list[str]:
    """A display name as header tokens: an atom run, a quoted-string, or encoded-words."""
    if not text:
        return []
    if text.isascii():
        if _ATEXT_PHRASE.match(text) and "  " not in text:
            return [text]
        return ['"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _encoded_words(text)


def _fold_tokens(name: str, tokens: list[str]) -> bytes:
    """`Name: tok tok ...` folded before a token that would pass 78 columns."""
    lines: list[str] = []
    line = f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > 78 and line != f"{name}:":
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    return "\r\n".join(lines).encode("utf-8") + CRLF


def mailbox_header(name: str, display: str, address: str) -> bytes:
    """`To: Zoë <zoe@example.com>` as folded bytes, the name encoded when not ASCII."""
    return _fold_tokens(name, [*phrase(display), f"<{address}>" if display else address])


def list_id_value(settings: Settings, digest: DigestSettings) -> tuple[str, str]:
    """(phrase, id) of the RFC 2919 List-Id, like ("Blog weekly digest", "weekly.example.com");
    with digests.X.title the phrase is "Blog: <title>"."""
    from_addr = settings.email.from_address
    domain = _idna(address_domain(from_addr))
    phrase = (
        f"{settings.site.title}: {digest.title}"
        if digest.title
        else (f"{settings.site.title} {digest.name} digest")
    )
    return _clean(phrase), f"{digest.name.lower()}.{domain}"


def list_unsubscribe_value(settings: Settings, url: str, mailto: str | None = None) -> str:
    """`<https://...>, <mailto:...?subject=unsubscribe>` (RFC 2369), never encoded; `mailto`:
    the second part made once already (_mailto_value), for a header built per message."""
    tail = _mailto_value(settings) if mailto is None else mailto
    return f"<{_check_uri(url, 'unsubscribe URL')}>{tail}"


def _mailto_value(settings: Settings) -> str:
    """What follows the URL in List-Unsubscribe: `, <mailto:...>`, or nothing."""
    mailto = settings.email.unsubscribe_mailto
    if not mailto:
        return ""
    if "?" not in mailto:
        mailto += "?subject=unsubscribe"
    return f", <{_check_uri(mailto, 'email.unsubscribe_mailto')}>"


def subject_text(segment: RenderedSegment, subject_prefix: str) -> str:
    """The Subject, with CR/LF refused rather than passed into a header."""
    subject = subject_prefix + segment.subject
    if re.search(r"[\x00-\x1f\x7f\u2028\u2029]", subject):
        raise BadInputError(f"subject {subject!r} contains a control character (CR/LF?)")
    return subject


def feedback_id(settings: Settings, digest: DigestSettings, run_id: int) -> str:
    """email.feedback_id with {digest} and {run} filled in ("" when not set)."""
    template = settings.email.feedback_id or ""
    return template.replace("{digest}", digest.name).replace("{run}", str(run_id))


class MessageTemplate:
    """Everything about a segment's message that is the same for each subscriber, prebuilt."""

    def __init__(
        self,
        settings: Settings,
        digest: DigestSettings,
        segment: RenderedSegment,
        renderer: Renderer,
        *,
        subject_prefix: str = "",
        feedback_id: str = "",
    ) -> None:
        # Line ends are made CRLF once here; placeholders are filled per subscriber in build().
        self._segment = dataclasses.replace(
            segment, html=normalise_lines(segment.html), text=normalise_lines(segment.text)
        )
        self._renderer = renderer
        self._html_fill = FillIn(self._segment.html)
        self._text_fill = FillIn(self._segment.text)
        self._settings = settings
        from_name, from_addr = settings.email.from_name, settings.email.from_address
        self.from_address = from_addr
        self._domain = _idna(address_domain(from_addr))
        self._mailto = settings.email.unsubscribe_mailto

        from_line = mailbox_header("From", from_name, from_addr)
        subject = policy.SMTP.header_factory("Subject", subject_text(segment, subject_prefix))
        subject_line = subject.fold(policy=policy.SMTP).encode("ascii")
        reply = b""
        if settings.email.reply_to:
            reply_name, reply_addr = parse_from_address(settings.email.reply_to)
            reply = mailbox_header("Reply-To", reply_name, reply_addr)
        list_phrase, list_id = list_id_value(settings, digest)
        list_line = _fold_tokens("List-Id", [*phrase(list_phrase), f"<{list_id}>"])
        self.boundary = "=_" + secrets.token_hex(12) + "=="  # "=_" never occurs in QP or base64
        self._text_cte = choose_encoding(segment.text)
        self._html_cte = "base64"
        boundary = self.boundary.encode("ascii")

        self._head = from_line
        self._middle = subject_line
        self._lists = reply + list_line
        if feedback_id:  # Gmail's feedback loop; DKIM signs it (mail.dkim's SIGNED_HEADERS)
            self._lists += b"Feedback-ID: " + feedback_id.encode("ascii") + b"\r\n"
        self._tail = (
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            b"Precedence: bulk\r\n"
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n'
            b"\r\n"
            b"--" + boundary + b"\r\n"
            b'Content-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: " + self._text_cte.encode("ascii") + b"\r\n"
            b"\r\n"
        )
        self._between = (
            b"\r\n--" + boundary + b"\r\n"
            b'Content-Type: text/html; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: " + self._html_cte.encode("ascii") + b"\r\n"
            b"\r\n"
        )
        self._end = b"\r\n--" + boundary + b"--\r\n"
        self._date_second = -1
        self._date_line = b""
        self._mailto = _mailto_value(settings)  # List-Unsubscribe's part that never changes

    def _date(self) -> bytes:
        # Formatting a date costs more than the rest of the headers; it changes once a second.
        now = time.time()
        second = int(now)
        if second != self._date_second:
            stamp = format_datetime(datetime.fromtimestamp(second, UTC))
            self._date_line = b"Date: " + stamp.encode("ascii") + CRLF
            self._date_second = second
        return self._date_line

    def build(
        self,
        *,
        to_email: str,
        to_name: str,
        unsubscribe_url: str,
        categories: Sequence[str] = (),
        preferences_url: str | None = None,
    ) -> BuiltMessage:
        """One subscriber's message: personalise, encode the two bodies, join prebuilt bytes."""
        name = _clean(to_name)
        _check_address(to_email)
        raw, escaped = self._renderer.personal_values(
            self._segment,
            name=name,
            email=to_email,
            unsubscribe_url=unsubscribe_url,
            categories=categories,
            preferences_url=preferences_url,
        )
        unsubscribe = list_unsubscribe_value(self._settings, unsubscribe_url, self._mailto)
        line = "List-Unsubscribe: " + unsubscribe
        if len(line) > MAX_LINE:
            line = line.replace(", ", ",\r\n ")  # folding at the comma keeps every URI literal
        message_id = make_msgid(domain=self._domain)
        if self._text_cte == "base64":
            text_body = self._text_fill.fill_base64(raw)
        else:
            text_body = self._text_fill.fill_qp(raw)
        parts = [
            self._head,
            mailbox_header("To", name, to_email),
            self._middle,
            self._date(),
            b"Message-ID: " + message_id.encode("ascii") + CRLF,
            self._lists,
            line.encode("ascii") + CRLF,
            self._tail,
            text_body,
            self._between,
            self._html_fill.fill_base64(escaped),
            self._end,
        ]
        data = b"".join(parts)
        # Only the text part can hold a line starting with "." (headers fold with a space,
        # base64 has no dot): stuffing it alone makes the wire form without a scan of the rest.
        if text_body.startswith(b".") or b"\r\n." in text_body:
            parts[8] = dot_stuff(text_body)
            return BuiltMessage(message_id, data, b"".join(parts))
        return BuiltMessage(message_id, data, data)


def dot_stuff(lines: bytes) -> bytes:
    """CRLF lines with a leading "." doubled (RFC 5321 4.5.2), for a part that starts a line."""
    stuffed = lines.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def build_message(
    settings: Settings,
    digest: DigestSettings,
    segment: RenderedSegment,
    renderer: Renderer,
    *,
    to_email: str,
    to_name: str,
    unsubscribe_url: str,
    subject_prefix: str = "",
    categories: Sequence[str] = (),
    preferences_url: str | None = None,
) -> EmailMessage:
    """The reference message, built with EmailMessage (slow; tests compare it to the template)."""
    name = _clean(to_name)
    html, text = renderer.personalise(
        segment,
        name=name,
        email=to_email,
        unsubscribe_url=unsubscribe_url,
        categories=categories,
        preferences_url=preferences_url,
    )
    from_name, from_addr = settings.email.from_name, settings.email.from_address
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = formataddr((from_name, from_addr)) if from_name else from_addr
    msg["To"] = Address(display_name=name, addr_spec=_check_address(to_email))
    msg["Subject"] = subject_text(segment, subject_prefix)
    msg["Date"] = format_datetime(datetime.now(UTC).replace(microsecond=0))
    msg["Message-ID"] = make_msgid(domain=_idna(address_domain(from_addr)))
    if settings.email.reply_to:
        msg["Reply-To"] = settings.email.reply_to
    list_phrase, list_id = list_id_value(settings, digest)
    if list_phrase.isascii():
        list_phrase = " ".join(phrase(list_phrase))  # an ASCII phrase with specials is quoted
    msg["List-Id"] = f"{list_phrase} <{list_id}>"  # unstructured: the stdlib encodes non-ASCII
    msg["List-Unsubscribe"] = list_unsubscribe_value(settings, unsubscribe_url)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Precedence"] = "bulk"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def serialise_message(msg: EmailMessage) -> bytes:
    """The reference message as SMTP bytes, List-Unsubscribe left unencoded."""
    return msg.as_bytes(policy=SMTP_POLICY)
