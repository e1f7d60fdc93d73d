"""What every post's texts and links are cleaned to, whichever reader made it (Post applies it).

post ─► cleaning: a `\x01` in a title would make the archive's Atom feed invalid XML, an escape
sequence (OSC 52 writes the terminal's clipboard) would reach `digest posts`, and a `javascript:`
or `data:` link would reach an email and the archive.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# C0 controls but tab, line feed and carriage return; DEL; C1 controls (0x9b is a terminal's CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# In a one-line text (a title, a name) line breaks and tabs become spaces.
_BREAK = re.compile(r"[\t\n\r\u2028\u2029]+")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
WEB_SCHEMES = frozenset({"http", "https"})
LINK_SCHEMES = WEB_SCHEMES | {"mailto"}
# Most links: http(s) and nothing to strip, told by one match (urlsplit costs ten times more).
_PLAIN_WEB_LINK = re.compile(r"https?://[^[\x00-\x20\x7f-\x9f\u2028\u2029]*", re.IGNORECASE)


def strip_controls(text: str) -> str:
    """The text without control characters (tabs and line breaks stay)."""
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


def one_line(text: str) -> str:
    """The text as one line: without control characters, each run of line breaks and tabs
    one space."""
    if not _CONTROL_OR_BREAK.search(text):
        return text
    return _CONTROL.sub("", _BREAK.sub(" ", text)).strip()


def web_link(url: str, *, schemes: frozenset[str] = WEB_SCHEMES) -> str | None:
    """The URL if it is a link a reader may follow: with a scheme, one of `schemes` (http,
    https); without one, a path on the site. None for `javascript:`, `data:`, `file:` and
    anything with a control character."""
    if _PLAIN_WEB_LINK.fullmatch(url) and schemes >= WEB_SCHEMES:
        return url
    value = url.strip()
    if _CONTROL_OR_BREAK.search(value):
        return None
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return None
    if scheme and scheme not in schemes:
        return None
    return value
