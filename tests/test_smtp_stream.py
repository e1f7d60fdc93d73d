"""The pipelined stream's envelope: addresses quoted exactly as smtplib quotes them."""

from __future__ import annotations

import smtplib

import pytest

from digest.smtp_stream import quote_address


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
