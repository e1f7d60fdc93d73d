"""The one SMTP transaction: MAIL, RCPT, DATA and the message, pipelined (RFC 2920) over one
session; each message's final dot travels with the next message's MAIL, RCPT and DATA, so a
message costs one round trip instead of two. Runs, test sends and the confirmation mailer all
send through it (`stream`, or `send_one` for a single message).

delivery, web ─► smtp.stream ─► smtp.client (the session it drives), smtp.replies (outcomes).

The caller gets each message's outcome before the next message's body is written, so it can
record it first: at any moment at most one message per session has its body on the wire
unrecorded. A session that fails after a final dot was written (a timeout, a closed socket)
names that message as possibly sent: it must be counted if it is sent again.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Generic, TypeVar

from digest.errors import SmtpConnectError
from digest.smtp.client import SmtpSender
from digest.smtp.replies import SendResult, Stage, reply_text, result_of

log = logging.getLogger(__name__)

K = TypeVar("K")

DOT = b".\r\n"
_LINE_END = re.compile(rb"\r\n|\r|\n")
_MAX_LINE = 8192  # smtplib's limit on a reply line
# A dot-atom address, which smtplib.quoteaddr (a full RFC 5322 parse) returns as it is, in <>.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def quote_address(address: str) -> str:
    """`<address>` for MAIL and RCPT as smtplib.quoteaddr makes it; no full parse when plain."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


@dataclass(frozen=True)
class WireMessage:
    """One message to one recipient as the wire carries it."""

    mail_from: str
    to: str
    wire: bytes  # CRLF lines, dot-stuffed, ending in CRLF; the final dot is added here

    @classmethod
    def of(cls, mail_from: str, to: str, data: bytes) -> WireMessage:
        """A message as bytes (any line ends) made ready for the wire: CRLF, dot-stuffed.

        Bare LF or CR are fixed to CRLF: SMTP forbids them (RFC 5321 §2.3.8; "SMTP smuggling").
        """
        if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
            data = _LINE_END.sub(b"\r\n", data)
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        return cls(mail_from, to, stuffed)


class SessionLost(SmtpConnectError, Generic[K]):
    """The session died mid-stream; `possibly_sent` had its final dot written, unanswered.

    `throttled`: the relay said 421 (closing); `after`: final dots it had answered on the
    session before (a relay that closes after N messages is not a failing relay).
    """

    def __init__(
        self,
        message: str,
        *,
        timed_out: bool,
        possibly_sent: K | None,
        throttled: bool = False,
        after: int = 0,
    ) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.possibly_sent = possibly_sent
        self.throttled = throttled
        self.after = after


class _Refused(Exception):
    """421 or a closed socket while reading a reply: the session is over.

    `answered`: the relay replied (421): whatever that reply was to, the relay did not take it.
    """

    def __init__(self, reason: str, *, timed_out: bool, answered: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out
        self.answered = answered


def _reply(conn: smtplib.SMTP) -> tuple[int, bytes]:
    """(code, raw text) of one reply, as smtplib's getreply reads it, without its debug hooks.

    The text stays bytes: most replies (250, 354) are only looked at for their code, so it is
    made printable (reply_text) only where it is kept or shown.
    """
    file = conn.file
    if file is None:
        if conn.sock is None:
            raise _Refused("connection closed", timed_out=False)
        file = conn.file = conn.sock.makefile("rb")
    line = _line(file)
    # Nearly every reply: one line, three digits and a space; anything else the long way.
    if line[3:4] == b" " and line[:3].isdigit() and len(line) <= _MAX_LINE:
        code = int(line[:3])
        if code != 421:
            return code, line[4:].strip(b" \t\r\n")
    lines: list[bytes] = []
    code = -1
    while True:
        if not line:
            raise _Refused("connection closed", timed_out=False)
        if len(line) > _MAX_LINE:
            raise _Refused("reply line too long", timed_out=False)
        lines.append(line[4:].strip(b" \t\r\n"))
        try:
            code = int(line[:3])
        except ValueError:
            code = -1
            break
        if line[3:4] != b"-":
            break
        line = _line(file)
    raw = lines[0] if len(lines) == 1 else b"\n".join(lines)
    if code == 421:
        raise _Refused(f"{code} {reply_text(raw)}", timed_out=False, answered=True)
    if code == -1:
        raise _Refused(f"{code} {reply_text(raw)}", timed_out=False)
    return code, raw


def _line(file: BinaryIO) -> bytes:
    try:
        return file.readline(_MAX_LINE + 1)
    except OSError as exc:
        timed_out = isinstance(exc, TimeoutError)
        raise _Refused(str(exc) or "connection closed", timed_out=timed_out) from exc


def _write(conn: smtplib.SMTP, data: bytes, more: bytes = b"") -> None:
    """data + more on the wire, as smtplib's send writes it (a failure closes the session).

    On a plain socket the two go in one sendmsg, so a body is not copied to append the final
    dot and the next envelope.
    """
    sock = conn.sock
    if not sock:
        raise _Refused("please run connect() first", timed_out=False)
    if more and type(sock) is not socket.socket:  # TLS: one buffer
        data, more = data + more, b""
    sys.audit("smtplib.send", conn, data)
    if more:
        sys.audit("smtplib.send", conn, more)
    try:
        if not more:
            sock.sendall(data)
        else:
            sent = sock.sendmsg((data, more))
            if sent < len(data) + len(more):
                sock.sendall((data + more)[sent:])
    except OSError as exc:
        conn.close()
        raise _Refused("Server not connected", timed_out=False) from exc


@dataclass(frozen=True)
class _Extensions:
    """What the session's EHLO offered that each envelope asks about."""

    size: bool
    smtputf8: bool

    @classmethod
    def of(cls, conn: smtplib.SMTP) -> _Extensions:
        return cls(bool(conn.does_esmtp and conn.has_extn("size")), conn.has_extn("smtputf8"))


def _envelope(
    extensions: _Extensions, message: WireMessage, mail_from: str | None = None
) -> bytes | None:
    """MAIL, RCPT and DATA as one write, or None when the server cannot take the addresses.

    mail_from: quote_address(message.mail_from) when the caller has it already."""
    options = f" SIZE={len(message.wire)}" if extensions.size else ""
    if not (message.mail_from.isascii() and message.to.isascii()):
        if not extensions.smtputf8:
            return None
        options += " SMTPUTF8"
    return (
        f"MAIL FROM:{mail_from or quote_address(message.mail_from)}{options}\r\n"
        f"RCPT TO:{quote_address(message.to)}\r\nDATA\r\n"
    ).encode()


_STAGES: tuple[Stage, ...] = ("mail", "rcpt", "data")


def _envelope_replies(conn: smtplib.SMTP, pipelined: bool, envelope: bytes) -> SendResult | None:
    """Replies to MAIL, RCPT, DATA: None when the server said 354, else the refusal."""
    if pipelined:
        replies = [_reply(conn), _reply(conn), _reply(conn)]
        if replies[2][0] == 354 and 200 <= replies[0][0] < 300 and 200 <= replies[1][0] < 300:
            return None  # the usual answer
    else:  # one command, one reply; the first refusal ends the transaction
        replies = []
        for line in envelope.split(b"\r\n")[:3]:
            _write(conn, line + b"\r\n")
            replies.append(_reply(conn))
            if not 200 <= replies[-1][0] < 400:
                break
    code, text = replies[-1]
    if code == 354 and all(200 <= c < 300 for c, _ in replies[:-1]):
        return None
    if code == 354:  # a server that said 354 despite a refusal: end the empty message
        _write(conn, DOT)
        _reply(conn)
    for stage, (code, text) in zip(_STAGES, replies, strict=False):
        if not 200 <= code < 300 and code != 354:
            _write(conn, b"RSET\r\n")
            _reply(conn)
            return result_of(code, text, stage)
    return SendResult("transient", code, f"unexpected reply to DATA: {reply_text(text)}")


def stream(
    sender: SmtpSender, messages: Iterable[tuple[K, WireMessage]]
) -> Iterator[tuple[K, SendResult]]:
    """Send each message on the sender's session; yield each outcome before the next body goes.

    `messages` is read lazily: the next message is asked for only when the previous one's
    envelope is answered, right before its own envelope is written.
    After smtp.max_messages_per_connection messages the session is closed and another opened.
    SessionLost when the session dies (the session is dropped; the next use reconnects).
    """
    conn = sender.session()
    pipelined = conn.has_extn("pipelining")
    extensions = _Extensions.of(conn)
    limit = sender.smtp.max_messages_per_connection
    quoted = ("", "")  # the last envelope sender, quoted (without VERP it is the same each time)
    held: tuple[K, WireMessage] | None = None  # envelope accepted (354), body not yet written
    written: K | None = None  # final dot written, reply not yet read
    try:
        for key, message in messages:
            if sender.limiter is not None:
                sender.limiter.acquire()
            if message.mail_from != quoted[0]:
                quoted = (message.mail_from, quote_address(message.mail_from))
            envelope = _envelope(extensions, message, quoted[1])
            envelope_sent = False
            if held is not None:
                last = bool(limit) and sender.answered + 1 >= limit  # this session's last
                after = DOT
                if pipelined and envelope is not None and not last:
                    after += envelope
                    envelope_sent = True
                written = held[0]
                _write(conn, held[1].wire, after)
                code, text = _reply(conn)
                written = None
                sender.answered += 1
                yield held[0], result_of(code, text, "data")
                held = None
                if last:
                    sender.close()
                    conn = sender.session()
                    pipelined = conn.has_extn("pipelining")
                    extensions = _Extensions.of(conn)
            if envelope is None:
                yield key, SendResult("permanent", 553, "server does not support SMTPUTF8")
                continue
            if pipelined and not envelope_sent:
                _write(conn, envelope)
            refused = _envelope_replies(conn, pipelined, envelope)
            if refused is None:
                held = (key, message)
            else:
                yield key, refused
        if held is not None:
            written = held[0]
            _write(conn, held[1].wire, DOT)
            code, text = _reply(conn)
            written = None
            sender.answered += 1
            yield held[0], result_of(code, text, "data")
            if limit and sender.answered >= limit:
                sender.close()
    except _Refused as exc:
        answered = sender.answered
        sender.drop()
        raise SessionLost(
            f"SMTP server {sender.where} dropped the session: {exc.reason}",
            timed_out=exc.timed_out,
            possibly_sent=None if exc.answered else written,
            throttled=exc.answered,
            after=answered,
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        answered = sender.answered
        sender.drop()
        raise SessionLost(
            f"SMTP server {sender.where} failed: {type(exc).__name__}: {exc}",
            timed_out=isinstance(exc, TimeoutError),
            possibly_sent=written,
            after=answered,
        ) from exc


def send_one(sender: SmtpSender, message: WireMessage) -> SendResult:
    """Send one message (a test send, a confirmation mail) through the same transaction as a run.

    A session lost before the final dot (a 421, a closed socket) means the relay did not take
    the message: the session is opened again and the message tried once more. One lost after
    the final dot (no answer: a timeout, a dropped connection) is not sent again here: the
    SessionLost names it as possibly sent, and the caller decides.
    """
    for attempt in (1, 2):
        try:
            for _, result in stream(sender, [(message, message)]):
                log.debug("%s -> %s %d %s", message.to, result.outcome, result.code, result.reply)
                return result
        except SessionLost as exc:
            if exc.possibly_sent is not None:
                raise SessionLost(
                    f"{exc.message}: no answer after the final dot, the message may have arrived",
                    timed_out=exc.timed_out,
                    possibly_sent=message,
                ) from exc
            if attempt == 2:
                raise
            log.info("%s; trying once more on a new session", exc.message)
    raise AssertionError("unreachable: stream yields one result per message")
