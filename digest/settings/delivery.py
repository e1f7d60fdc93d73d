"""delivery.*: retries, giving up, and how sent marks are recorded."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from digest.settings.base import SettingsModel
from digest.settings.durations import parse_duration

# delivery.mark_window: its default, and its ceiling (also what a dead sender whose worker row is
# gone is assumed to have used when its possible re-sends are counted).
MARK_WINDOW = 1
MAX_MARK_WINDOW = 64


class DeliverySettings(SettingsModel):
    max_attempts: int = Field(5, ge=1, le=100)
    retry_backoff: float = Field(60.0, ge=0)
    # A delivery still deferred (4xx) this long after its run started is given up as failed.
    give_up_after: timedelta = timedelta(days=3)
    # After a sender is killed, at most this many messages per connection may go out twice
    # (counted as possible re-sends). 1 (the default): each accepted message is in the sending
    # thread's journal before the next body goes (store.journal), the database catches up 16 at
    # a time; more: no journal, the sent marks of that many messages commit together.
    mark_window: int = Field(MARK_WINDOW, ge=1, le=MAX_MARK_WINDOW)

    @field_validator("give_up_after", mode="before")
    @classmethod
    def _give_up(cls, value: object) -> timedelta:
        return parse_duration(value)
