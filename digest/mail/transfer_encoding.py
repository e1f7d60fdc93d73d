"""Content-Transfer-Encoding of a message's bodies: CRLF lines, quoted-printable or base64.

render ─► message ─► delivery: message encodes each subscriber's two bodies with these.

The text/plain part is quoted-printable when mostly ASCII (readable in the raw source, barely
larger than the text) and base64 when more than ~15% of its bytes are non-ASCII (CJK: QP would
triple them). The text/html part is always base64: premailer's inlined HTML has an "=" in every
attribute and lines of hundreds of characters, so QP is neither readable nor much smaller (+12%
vs +37% here), and CPython's b2a_qp costs ~15 ns a byte against ~2 for b2a_base64, which made it
half of the per-subscriber cost. Line ends are normalised to CRLF once per segment (personalised
values cannot contain line breaks), so a message's build() only encodes.
"""

from __future__ import annotations

import binascii

CRLF = b"\r\n"
BASE64_THRESHOLD = 0.15  # share of non-ASCII bytes above which base64 beats quoted-printable


def normalise_lines(text: str) -> str:
    """CRLF line ends and a final line break, as EmailMessage.set_content produces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", "\r\n")


def choose_encoding(sample: str) -> str:
    """ "quoted-printable" for mostly-ASCII text, "base64" when non-ASCII bytes dominate."""
    raw = sample.encode("utf-8")
    if not raw:
        return "quoted-printable"
    high = len(raw) - len(raw.decode("utf-8").encode("ascii", "ignore"))
    return "base64" if high / len(raw) > BASE64_THRESHOLD else "quoted-printable"


def encode_qp(raw: bytes) -> bytes:
    """Quoted-printable of CRLF text: soft breaks at 76 (CRLF, as the input), spaces escaped."""
    return binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)


# slice(0, 76), slice(76, 152), ...: replaced (never mutated) when a longer body comes, so
# threads building messages at once each read a complete tuple.
_B64_LINES: tuple[slice, ...] = ()


def encode_base64(raw: bytes) -> bytes:
    """Base64 in CRLF-terminated lines of 76 characters."""
    global _B64_LINES
    encoded = binascii.b2a_base64(raw, newline=False)
    count = -(-len(encoded) // 76)
    lines = _B64_LINES
    if count > len(lines):
        lines = tuple(slice(i * 76, i * 76 + 76) for i in range(max(count, 2 * len(lines))))
        _B64_LINES = lines
    # map() over prebuilt slices keeps the splitting loop in C.
    return CRLF.join(map(encoded.__getitem__, lines[:count])) + CRLF


ENCODERS = {"quoted-printable": encode_qp, "base64": encode_base64}


LINE_BYTES = 57  # the input bytes of one 76-character base64 line
_B64_LINE = 78  # its bytes encoded, CRLF included
PIECES_CACHE_BYTES = 4 << 20  # what one body's prebuilt lines may hold, at most


class Base64Pieces:
    """encode_base64 of fixed pieces with per-message values between them, mostly prebuilt.

    Base64 lines are 57 input bytes each, so a fixed piece's whole lines encode the same in every
    message that starts it at the same offset within a line; the values before it decide that
    offset. Those lines are encoded once per offset seen (at most 57; up to PIECES_CACHE_BYTES
    for the body, the rest is encoded each time), so a message encodes only the lines that hold
    a value or a seam. The result is byte for byte encode_base64 of the joined body.
    """

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces
        self._prebuilt: list[dict[int, tuple[bytes, bytes, bytes]]] = [{} for _ in pieces]
        self._room = PIECES_CACHE_BYTES

    def _split(self, index: int, offset: int) -> tuple[bytes, bytes, bytes]:
        """(head, encoded whole lines, tail) of piece `index` begun `offset` bytes into a line."""
        prebuilt = self._prebuilt[index].get(offset)
        if prebuilt is not None:
            return prebuilt
        piece = self._pieces[index]
        head_size = (LINE_BYTES - offset) % LINE_BYTES
        whole = (len(piece) - head_size) // LINE_BYTES * LINE_BYTES
        if whole <= 0:
            return piece, b"", b""
        lines = encode_base64(piece[head_size : head_size + whole])
        split = (piece[:head_size], lines, piece[head_size + whole :])
        if len(lines) <= self._room:  # a body too big to keep is still right, only slower
            self._room -= len(lines)
            self._prebuilt[index][offset] = split
        return split

    def encode(self, values: list[bytes]) -> bytes:
        """encode_base64(pieces[0] + values[0] + pieces[1] + ... + pieces[-1])."""
        out: list[bytes] = []
        # The bytes around the values (whole lines each, but the last) are encoded in one call:
        # each slot of `out` they fill takes its lines, 78 bytes a line, from that encoding.
        seams: list[bytes] = []
        slots: list[tuple[int, int]] = []  # (index in out, lines; -1: the rest)
        pending = b""  # bytes not yet encoded: always less than a line between pieces
        last = len(self._pieces) - 1
        for index in range(last + 1):
            head, lines, tail = self._split(index, len(pending))
            if lines:
                if pending or head:
                    slots.append((len(out), 1))  # exactly one line
                    out.append(b"")
                    seams.append(pending + head)
                out.append(lines)
                pending = tail
            else:
                pending += head
            if index < last:
                pending += values[index]
            if len(pending) >= LINE_BYTES:
                count = len(pending) // LINE_BYTES
                slots.append((len(out), count))
                out.append(b"")
                seams.append(pending[: count * LINE_BYTES])
                pending = pending[count * LINE_BYTES :]
        if pending or not out:
            slots.append((len(out), -1))
            out.append(b"")
            seams.append(pending)
        if slots:
            encoded = encode_base64(b"".join(seams))
            start = 0
            for slot, count in slots:
                end = start + count * _B64_LINE if count >= 0 else len(encoded)
                out[slot] = encoded[start:end]
                start = end
        return b"".join(out)


class QuotedPrintablePieces:
    """encode_qp of fixed pieces with per-message values between them, mostly prebuilt.

    Quoted-printable works line by line (values hold no line breaks), so each fixed piece's
    whole lines are encoded once; a message encodes only the lines that hold a value. The result
    is byte for byte encode_qp of the joined body (a body not ending in CRLF, which
    normalise_lines never makes, is encoded whole).
    """

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces
        self._whole = not pieces[-1].endswith(CRLF)
        # (start of the piece up to its first line end, its whole lines encoded, the rest)
        self._parts: list[tuple[bytes, bytes | None, bytes]] = []
        for piece in pieces:
            first, last = piece.find(CRLF), piece.rfind(CRLF)
            if first < 0:  # no line end: all of it belongs to a line with values
                self._parts.append((piece, None, b""))
            else:
                lines = piece[first + 2 : last + 2]
                self._parts.append((piece[: first + 2], encode_qp(lines), piece[last + 2 :]))

    def encode(self, values: list[bytes]) -> bytes:
        """encode_qp(pieces[0] + values[0] + pieces[1] + ... + pieces[-1])."""
        if self._whole:
            joined = [b""] * (2 * len(self._pieces) - 1)
            joined[::2], joined[1::2] = self._pieces, values
            return encode_qp(b"".join(joined))
        out: list[bytes] = []
        pending = b""  # the start of a line that holds a value
        last = len(self._parts) - 1
        for index, (head, lines, tail) in enumerate(self._parts):
            pending += head
            if lines is not None:  # the piece ended that line and holds whole lines of its own
                out += (encode_qp(pending), lines)
                pending = tail
            if index < last:
                pending += values[index]
        return b"".join(out)
