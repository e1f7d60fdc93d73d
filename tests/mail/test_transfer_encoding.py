"""Transfer encodings: the prebuilt base64 of a body's fixed pieces is the whole body's base64."""

from __future__ import annotations

import base64
import random

import pytest

from digest.mail import transfer_encoding
from digest.mail.transfer_encoding import (
    LINE_BYTES,
    Base64Pieces,
    QuotedPrintablePieces,
    encode_base64,
    encode_qp,
)


def test_encode_base64_makes_crlf_lines_of_76() -> None:
    raw = bytes(range(256)) * 3
    lines = encode_base64(raw).split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) == 76 for line in lines[:-2]) and 0 < len(lines[-2]) <= 76
    assert base64.b64decode(b"".join(lines)) == raw


@pytest.mark.parametrize("seed", range(40))
def test_prebuilt_pieces_encode_as_the_joined_body(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [0, 1, 2, 3, LINE_BYTES - 1, LINE_BYTES, LINE_BYTES + 1, 2 * LINE_BYTES, 500, 4000]
    pieces = [rng.randbytes(rng.choice(sizes)) for _ in range(rng.randint(1, 6))]
    encoder = Base64Pieces(pieces)
    for _ in range(30):  # many messages through one encoder: its prebuilt lines are reused
        values = [rng.randbytes(rng.choice([0, 1, 5, 40, 56, 57, 58, 130])) for _ in pieces[1:]]
        body = b"".join(p + v for p, v in zip(pieces, [*values, b""], strict=True))
        assert encoder.encode(values) == encode_base64(body)


def test_a_body_too_big_to_keep_prebuilt_is_still_encoded_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transfer_encoding, "PIECES_CACHE_BYTES", 200)
    pieces = [b"<html>" * 100, b"</p>" * 300, b"end"]
    encoder = Base64Pieces(pieces)
    for name in (b"Ann", b"Bartholomew", b"", b"Zo\xc3\xab" * 30):
        values = [name, b"ann@example.com"]
        assert encoder.encode(values) == encode_base64(
            pieces[0] + values[0] + pieces[1] + values[1] + pieces[2]
        )


def _text_piece(rng: random.Random) -> bytes:
    words = ["word", " ", "  ", "=", "caf\xe9", "\t", ".", "x" * 90, "\r\n", "\r\n\r\n", "-- "]
    return "".join(rng.choice(words) for _ in range(rng.randint(0, 30))).encode("utf-8")


@pytest.mark.parametrize("seed", range(40))
def test_prebuilt_quoted_printable_is_the_joined_body_encoded(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [_text_piece(rng) for _ in range(rng.randint(1, 6))]
    pieces[-1] += b"\r\n"  # bodies end with a line break (normalise_lines)
    encoder = QuotedPrintablePieces(pieces)
    for _ in range(20):
        values = [
            rng.choice(["", "Ann", "Zoë Ünal", "x" * 80, "a=b ", "trailing "]).encode("utf-8")
            for _ in pieces[1:]
        ]
        body = b"".join(p + v for p, v in zip(pieces, [*values, b""], strict=True))
        assert encoder.encode(values) == encode_qp(body)


def test_a_body_without_a_final_line_break_is_quoted_printable_encoded_whole() -> None:
    pieces = [b"Hi ", b",\r\nlong " + b"y" * 100, b" end "]
    values = [b"Ann", b"ann@example.com"]
    body = pieces[0] + values[0] + pieces[1] + values[1] + pieces[2]
    assert QuotedPrintablePieces(pieces).encode(values) == encode_qp(body)
