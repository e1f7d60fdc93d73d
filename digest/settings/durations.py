"""Durations as the config writes them: `6h`, `90m`, `1d12h`, `3600` (seconds).

config reads them (misfire_grace, give_up_after); scheduler writes them back in its log lines.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """`6h`, `90m`, `1d12h`, `3600` (seconds) as a timedelta."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 6h, 30m or 1d")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(f"{text!r} is not a duration like 6h, 30m or 1d")
    return timedelta(seconds=sum(float(n) * _DURATION_UNITS[u.lower()] for n, u in parts))


def format_duration(value: timedelta) -> str:
    """6h, 1h30m, 45s: how misfire_grace is written in the config."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
