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


# The C0 controls and DEL of _CONTROL as UTF-8 bytes (a C1 control is \xc2 and 0x80-0x9f).
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def strip_controls(text: str) -> str:
    """The text without control characters (tabs and line breaks stay)."""
    # A post's body checked in one C pass over its UTF-8 bytes, 2-3 times quicker than the
    # regex; text with a \xc2 byte (U+0080-U+00BF: maybe a C1 control) goes to the regex.
    data = text.encode("ascii") if text.isascii() else text.encode("utf-8", "surrogatepass")
    if b"\xc2" not in data and len(data.translate(None, _CONTROL_BYTES)) == len(data):
        return text
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub("", text)


def one_line_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Names (categories, tags) each made one line, the empty ones left out: `names` itself
    when none changes."""
    if type(names) is tuple and all(names) and not _CONTROL_OR_BREAK.search("".join(names)):
        return names  # one search for all of them: most names need nothing
    return tuple(name for name in map(one_line, names) if name)


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
