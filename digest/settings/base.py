"""The one base of every settings model: unknown keys are errors, values are frozen.

settings is a leaf: pure data parsed from config.yaml; it imports nothing of digest but errors
and the leaf parsers (addresses, crontab, durations).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
