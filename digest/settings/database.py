"""database.*: where the store lives (SQLite file or PostgreSQL URL)."""

from __future__ import annotations

from digest.settings.base import SettingsModel


class DatabaseSettings(SettingsModel):
    url: str = "sqlite:///digest.db"
    # PostgreSQL: whether each window of sent marks waits for the server's disk (store.recorder).
    durable_marks: bool = True
