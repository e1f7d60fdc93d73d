"""Typed, frozen settings: one model per config section, parsed once at load (config.py).

A leaf: pure data; imports nothing of digest but errors and the leaf parsers. Everything else
reads `settings.smtp.port` as an int, never a raw mapping.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from digest.errors import UnknownDigestError
from digest.settings.base import SettingsModel
from digest.settings.bounces import BouncesSettings
from digest.settings.database import DatabaseSettings
from digest.settings.delivery import MARK_WINDOW, MAX_MARK_WINDOW, DeliverySettings
from digest.settings.digests import DEFAULT_SUBJECT, DigestSettings
from digest.settings.email import DkimSettings, EmailSettings
from digest.settings.site import SiteSettings
from digest.settings.smtp import SmtpSettings
from digest.settings.web import WebSettings

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_SUBJECT",
    "MARK_WINDOW",
    "MAX_MARK_WINDOW",
    "BouncesSettings",
    "DatabaseSettings",
    "DeliverySettings",
    "DigestSettings",
    "DkimSettings",
    "EmailSettings",
    "Settings",
    "SiteSettings",
    "SmtpSettings",
    "WebSettings",
]

DEFAULT_CONFIG = "config.yaml"
_DIGEST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Settings(SettingsModel):
    site: SiteSettings
    templates_dir: Path | None = None
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()  # the primary relay (the first of an smtp list)
    relays: tuple[SmtpSettings, ...] = Field(default=(), exclude=True)  # every relay, from smtp
    email: EmailSettings
    web: WebSettings = WebSettings()
    delivery: DeliverySettings = DeliverySettings()
    bounces: BouncesSettings = BouncesSettings()
    digests: dict[str, DigestSettings] = Field(default_factory=dict)
    source: Path = Field(default=Path(DEFAULT_CONFIG), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _no_source_key(cls, data: object) -> object:
        if isinstance(data, dict) and "source" in data and not isinstance(data["source"], Path):
            raise ValueError("source: unknown key")
        if isinstance(data, dict) and "relays" in data:
            if not isinstance(data["relays"], tuple):
                raise ValueError("relays: unknown key (list the relays under smtp)")
            return data
        if isinstance(data, dict) and isinstance(data.get("smtp"), list):
            relays = data["smtp"]
            if not relays:
                raise ValueError("smtp: an empty list; give one relay or more")
            for index, relay in enumerate(relays):
                if isinstance(relay, dict) and "name" not in relay:
                    raise ValueError(f"smtp[{index}]: each relay of a list needs a name")
            return {**data, "smtp": relays[0], "relays": tuple(relays)}
        return data

    @model_validator(mode="after")
    def _relay_names(self) -> Settings:
        if not self.relays:
            object.__setattr__(self, "relays", (self.smtp,))
        names = [r.name for r in self.relays]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"smtp: two relays are named {name!r}")
        for digest in self.digests.values():
            if digest.relay is not None and digest.relay not in names:
                raise ValueError(
                    f"digests.{digest.name}.relay: no relay named {digest.relay!r} under smtp "
                    f"(relays: {', '.join(names)})"
                )
        return self

    def relay_chain(self, digest: DigestSettings | None = None) -> list[SmtpSettings]:
        """The relays a digest sends through, in order: its own (or the primary), then the rest."""
        first = digest.relay if digest is not None and digest.relay else self.relays[0].name
        return sorted(self.relays, key=lambda r: r.name != first)

    @field_validator("digests", mode="before")
    @classmethod
    def _name_digests(cls, value: object) -> object:
        if isinstance(value, dict):
            named: dict[str, object] = {}
            for name, body in value.items():
                if not _DIGEST_NAME.match(str(name)):
                    raise ValueError(
                        f"digest name {name!r} must be letters, digits, - and _ (at most 64)"
                    )
                body = {} if body is None else body
                if isinstance(body, dict):
                    if "name" in body:
                        # The key is the name; a display name is `title` (a `name:` here was
                        # once silently ignored).
                        raise ValueError(
                            f"digests.{name}.name: unknown key (the name readers see is "
                            f"`title`: digests.{name}.title)"
                        )
                    body = {**body, "name": str(name)}
                named[str(name)] = body
            return named
        return value

    def digest(self, name: str) -> DigestSettings:
        """The digest called `name`, or an error listing the ones there are."""
        try:
            return self.digests[name]
        except KeyError:
            known = ", ".join(sorted(self.digests)) or "none"
            raise UnknownDigestError(
                f"unknown digest {name!r} in {self.source} (digests: {known})"
            ) from None

    @property
    def config_dir(self) -> Path:
        return self.source.parent
