"""The pipelined stream's envelope: addresses quoted exactly as smtplib quotes them."""

from __future__ import annotations

import smtplib

import pytest

from digest.smtp.replies import reply_text
from digest.smtp.stream import quote_address


@pytest.mark.parametrize(
    "address",
    [
        "reader000001@example.org",
        "first.last+tag@mail.example.co.uk",
        "bounce+12-34=example.org@news.example.com",
        "o'brien@example.ie",
        "a..b@example.org",  # not a dot-atom: smtplib's parse decides
        '"quoted local"@example.org',
        "zoë@exämple.de",
        "user@[192.0.2.1]",
        "",
    ],
)
def test_addresses_are_quoted_as_smtplib_quotes_them(address: str) -> None:
    assert quote_address(address) == smtplib.quoteaddr(address)


@pytest.mark.parametrize(
    "raw",
    [
        b"2.0.0 Ok: queued as 4Xyz",
        b"  padded reply  ",
        b"",
        b"5.7.1 AUTH PLAIN AHVzZXIAcGFzcw== rejected",  # an echoed payload: redacted
        b"5.7.1 auth login c2VjcmV0 rejected",
        b"line one\nline two",
        b"bell \x07 and escape \x1b[31m",
        b"caf\xc3\xa9 \xff",
    ],
)
def test_a_plain_reply_takes_the_short_way_with_the_same_text(raw: bytes) -> None:
    text = reply_text(raw)
    assert text == reply_text(raw.decode("utf-8", "replace"))
    assert "c2VjcmV0" not in text and "AHVzZXIAcGFzcw==" not in text
    assert text.isprintable()
