"""Every post's links leave sources as web links only, on the fast path and the slow one alike."""

from __future__ import annotations

import pytest

from digest.sources.cleaning import LINK_SCHEMES, web_link


@pytest.mark.parametrize(
    ("url", "web", "link"),
    [
        ("https://a.example/x?y=1", "https://a.example/x?y=1", "https://a.example/x?y=1"),
        ("HTTP://A/b", "HTTP://A/b", "HTTP://A/b"),
        (" https://a/ ", "https://a/", "https://a/"),
        ("javascript:alert(1)", None, None),
        ("JavaScript:alert(1)", None, None),
        ("data:image/png;base64,xx", None, None),
        ("/path/x.png", "/path/x.png", "/path/x.png"),
        ("https://a/\x01b", None, None),
        ("https://a/\u2028b", None, None),
        ("https://a/\x9bb", None, None),
        ("mailto:x@example.org", None, "mailto:x@example.org"),
        ("ftp://x", None, None),
        ("https://[::1", None, None),
    ],
)
def test_only_web_links_pass(url: str, web: str | None, link: str | None) -> None:
    assert web_link(url) == web
    assert web_link(url, schemes=LINK_SCHEMES) == link
