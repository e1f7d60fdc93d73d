"""The typed settings of `digest serve`: web.* (public address, secret, proxies, sign-up limits).

config.yaml ─► config (which nests these) ─► web, tokens; every error names the key.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta

from pydantic import Field, SecretStr, field_validator

from digest.settings.base import SettingsModel
from digest.settings.durations import parse_duration


class WebSettings(SettingsModel):
    base_url: str = "http://localhost:8080"
    secret: SecretStr = SecretStr("")
    # Peers (addresses or networks) whose X-Forwarded-For is believed: your reverse proxy.
    trusted_proxies: list[str] = Field(default_factory=list)
    signup_resend_after: timedelta = timedelta(minutes=10)
    signups_per_ip_per_hour: int = Field(20, ge=1)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (like 10.0.0.1 or 10.0.0.0/8)"
                ) from None
        return [item.strip() for item in value]

    @field_validator("signup_resend_after", mode="before")
    @classmethod
    def _resend(cls, value: object) -> timedelta:
        return parse_duration(value)

    # A public archive of sent digests, and a "View in browser" link in each email.
    archive: bool = False

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL, like https://news.example.com")
        return value.rstrip("/")
