"""site.*: the blog being read (url, where its posts are, time zone, language, source kind)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from digest.settings.base import SettingsModel


class SiteSettings(SettingsModel):
    title: str
    url: str
    baseurl: str = ""
    posts_dir: Path = Path("_posts")
    root: Path | None = None
    timezone: str = "UTC"
    permalink: str = "date"
    excerpt_separator: str = "\n\n"
    # A bigger post file is skipped with a warning (a post is kilobytes; this guards memory).
    max_post_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    lang: str = "en"

    @field_validator("lang", mode="before")
    @classmethod
    def _lang(cls, value: object) -> str:
        text = str(value or "en").strip().replace("_", "-")  # Jekyll sites write en_US too
        if re.fullmatch(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*", text):
            return text
        raise ValueError(f"{text!r} is not a language tag like en or pt-BR")

    # Where posts come from; load_settings detects it when the config leaves it out.
    source: Literal["jekyll", "hugo", "feed"] = "jekyll"
    sections: tuple[str, ...] = ()
    feed_url: str | None = None

    @field_validator("sections", mode="before")
    @classmethod
    def _sections(cls, value: object) -> object:
        if value is None:
            return ()
        return tuple(value.split()) if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL, like https://blog.example.com")
        return value.rstrip("/")

    @field_validator("baseurl")
    @classmethod
    def _baseurl(cls, value: str | None) -> str:
        value = (value or "").strip().strip("/")
        return f"/{value}" if value else ""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/London)"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def root_url(self) -> str:
        """`url` + `baseurl`, without a trailing slash."""
        return self.url + self.baseurl
