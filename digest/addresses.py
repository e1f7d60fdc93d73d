"""Email addresses and display names checked at the boundary (config, CLI, CSV, web).

Nothing with CR/LF or another control character gets into a header from here on.
"""

from __future__ import annotations

import re
import unicodedata
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
MAX_NAME_LENGTH = 200


def has_control_character(text: str) -> bool:
    """True when the text holds CR, LF, another control character or a line separator."""
    return _CONTROL.search(text) is not None


def normalise_email(address: str) -> str:
    """The address as we store it (domain lower-cased, IDN normalised), or ValueError why not."""
    text = address.strip()
    if has_control_character(text):
        raise ValueError(f"{address!r} contains a control character (CR/LF?)")
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ValueError(f"{text!r} is not a valid email address: {exc}") from None
    return str(result.normalized)


def email_key(address: str) -> str:
    """The case-insensitive identity of an address (unique in the subscriber list)."""
    return address.casefold()


def clean_name(name: str | None) -> str:
    """A display name with no control characters, or ValueError naming the problem."""
    if name is None:
        return ""
    if has_control_character(name):
        raise ValueError(f"name {name!r} contains a control character (CR/LF?)")
    name = unicodedata.normalize("NFC", name).strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"name is longer than {MAX_NAME_LENGTH} characters")
    return name


def parse_from_address(value: str) -> tuple[str, str]:
    """A `Name <addr>` or bare address from the config as (name, address), or ValueError."""
    if _CONTROL.search(value):
        raise ValueError(f"{value!r} contains a control character")
    name, address = parseaddr(value)
    if not address:
        raise ValueError(f"{value!r} is not an address like 'Blog <news@example.com>'")
    return clean_name(name), normalise_email(address)


def address_domain(address: str) -> str:
    """The domain part of an address (for Message-ID and List-Id)."""
    return address.rsplit("@", 1)[-1].lower()
