"""digests.<name>: one digest (subject, schedule, categories, limits, template)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from digest.crontab import check_crontab
from digest.settings.base import SettingsModel
from digest.settings.durations import parse_duration

# The default subject, "Example Blog: 3 new posts"; render says it in the site's language.
DEFAULT_SUBJECT = "{{ site.title }}: {{ posts|length }} new post{{ 's' if posts|length != 1 }}"


class DigestSettings(SettingsModel):
    name: str = ""
    # The name readers see (emails, pages, List-Id, `digest.title` in the subject); None:
    # made from the key in the site's language ("weekly" -> "Weekly digest").
    title: str | None = None
    subject: str = DEFAULT_SUBJECT
    schedule: str = "0 9 * * mon"
    categories: tuple[str, ...] = ()
    max_posts: int = Field(20, ge=1, le=500)
    min_posts: int = Field(1, ge=0)
    lookback_days: float = Field(7, gt=0)
    misfire_grace: timedelta = timedelta(hours=6)
    template: str = "digest"
    relay: str | None = None  # the name of a relay in an smtp list (default: the first)
    # Before a run, fetch each post's URL and images: warn, hold the run until they answer,
    # or skip the dead posts (they stay new).
    check_links: Literal["off", "warn", "hold", "skip"] = "off"
    # at_once: everyone at the schedule's time in site.timezone; local_time: each subscriber at
    # the schedule's wall time in their own zone (one run per edition).
    deliver: Literal["at_once", "local_time"] = "at_once"

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if not text:
            return None
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise ValueError("must be one line without control characters")
        if len(text) > 120:
            raise ValueError("is longer than 120 characters")
        return text

    @field_validator("check_links", mode="before")
    @classmethod
    def _check_links(cls, value: object) -> object:
        # YAML reads a bare `off` as false.
        return "off" if value is False else value

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(value.split())
        return value

    @field_validator("misfire_grace", mode="before")
    @classmethod
    def _grace(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        check_crontab(value)  # ValueError naming the field at fault, or "never fires"
        return value.strip() if value.strip().startswith("@") else value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-]+$", value):
            raise ValueError("must be a template name like 'digest' (letters, digits, - and _)")
        return value

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)
