"""The typed settings of the SMTP relays: smtp.* (host, port, security, login, limits), one
relay or a list of named relays (primary first).

config.yaml ─► config (which nests these) ─► smtp, delivery; every error names the key.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import Field, SecretStr, field_validator

from digest.settings.base import SettingsModel
from digest.settings.durations import parse_duration

RATE_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "hour": 3600.0}
RATE_UNITS |= {"d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*([a-z]+))?\s*$", re.IGNORECASE)
_RELAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_RELAY = "default"


class Rate(NamedTuple):
    """`limit` messages in any window of `seconds` (smtp.rate_limit: "200/s", "10000/day")."""

    limit: float
    seconds: float
    text: str


def parse_rates(value: object) -> tuple[Rate, ...]:
    """A number (per second), "600/min", "10000/h", "10000/day", or a list of them; 0: none."""
    items = value if isinstance(value, list | tuple) else [value]
    rates: list[Rate] = []
    for item in items:
        if isinstance(item, bool) or item is None:
            raise ValueError(f"{item!r} is not a rate like 200/s, 600/min or 10000/day")
        match = _RATE.match(str(item))
        unit = (match.group(2) or "s").lower() if match else ""
        if match is None or unit not in RATE_UNITS:
            raise ValueError(f"{item!r} is not a rate like 200/s, 600/min or 10000/day")
        count = float(match.group(1))
        if count > 0:
            text = str(item).strip() if match.group(2) else f"{match.group(1)}/s"
            rates.append(Rate(count, RATE_UNITS[unit], text))
    return tuple(rates)


class SmtpSettings(SettingsModel):
    name: str = DEFAULT_RELAY  # a relay's name in an smtp list (history `relays`, digests.X.relay)
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    ca_file: Path | None = None
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout: float = Field(30.0, gt=0)
    max_connections: int = Field(4, ge=1, le=64)
    # Over every sender process on every machine working on this relay (shared in the store).
    rate_limit: tuple[Rate, ...] = ()
    max_messages_per_connection: int = Field(0, ge=0)  # 0: as many as the relay takes
    # Provider group (google, microsoft, yahoo, apple) or domain -> its rates on this relay.
    destination_limits: dict[str, tuple[Rate, ...]] = Field(default_factory=dict)
    failover_after: timedelta = timedelta(seconds=60)
    # A run that left this relay (the first of the digest's chain) for a later one tries it
    # again after this long; None: the rest of the run stays on the later relay.
    failback_after: timedelta | None = timedelta(minutes=10)
    # Timeouts in a row (over a process's connections) after which a run stops: a relay that
    # hangs would otherwise cost smtp.timeout per message.
    max_timeouts: int = Field(3, ge=1)

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rates(cls, value: object) -> tuple[Rate, ...]:
        return value if _are_rates(value) else parse_rates(value)  # type: ignore[return-value]

    @field_validator("destination_limits", mode="before")
    @classmethod
    def _destination_rates(cls, value: object) -> dict[str, tuple[Rate, ...]]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("must be a mapping like {google: 20/s, example.org: 600/min}")
        return {
            str(key).lower(): rates if _are_rates(rates) else parse_rates(rates)
            for key, rates in value.items()
        }

    @field_validator("failover_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("failback_after", mode="before")
    @classmethod
    def _failback(cls, value: object) -> timedelta | None:
        if value is None:
            return None
        duration = parse_duration(value)
        if duration.total_seconds() <= 0:
            raise ValueError("must be a duration like 10m, or null to stay on the later relay")
        return duration

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RELAY_NAME.match(value):
            raise ValueError(f"{value!r}: a relay name is letters, digits, '.', '-', '_'")
        return value

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def _are_rates(value: object) -> bool:
    return isinstance(value, tuple) and all(isinstance(r, Rate) for r in value)
