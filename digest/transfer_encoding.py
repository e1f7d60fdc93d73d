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
