"""email.*: the From line, replies, List-Unsubscribe mailto, VERP bounce address and DKIM."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from digest.addresses import normalise_email, parse_from_address
from digest.settings.base import SettingsModel


class DkimSettings(SettingsModel):
    """email.dkim: sign each message with this key (for those who run their own MTA)."""

    domain: str
    selector: str
    private_key_file: Path

    @field_validator("domain", "selector")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", value):
            raise ValueError(f"{value!r} is not a DNS name like example.com or news2026")
        return value.lower()


class EmailSettings(SettingsModel):
    from_: str = Field(alias="from")
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None
    # `from` parsed once, at load: the display name ("" if none) and the normalised address.
    _from_mailbox: tuple[str, str] = PrivateAttr()
    # VERP: MAIL FROM becomes bounces+<code>@example.com, so a bounce names its delivery.
    bounce_address: str | None = None
    dkim: DkimSettings | None = None
    # Feedback-ID header (Gmail's feedback loop): {digest} and {run} are filled in per run.
    feedback_id: str | None = None

    @field_validator("feedback_id")
    @classmethod
    def _feedback_id(cls, value: str | None) -> str | None:
        if value is not None and not (value.isascii() and value.isprintable() and value.strip()):
            raise ValueError("must be printable ASCII, like {digest}:{run}:newsletter:blogname")
        return value or None

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address(cls, value: str | None) -> str | None:
        if not value:
            return None
        address = normalise_email(value)
        if "+" in address.split("@")[0]:
            raise ValueError(f"{address!r}: give the plain address; digest adds +<code> itself")
        return address

    @field_validator("from_", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_from_address(value)  # raises ValueError with the reason
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._from_mailbox = parse_from_address(self.from_)

    @property
    def from_name(self) -> str:
        """The From display name, like "Example Blog" ("" when `from` is a bare address)."""
        return self._from_mailbox[0]

    @property
    def from_address(self) -> str:
        """The From address, normalised, like "news@example.com"."""
        return self._from_mailbox[1]

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if not value:
            return None
        address = value.removeprefix("mailto:")
        normalise_email(address.split("?", 1)[0])
        return f"mailto:{address}"
