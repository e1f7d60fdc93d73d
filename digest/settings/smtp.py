"""The typed settings of the SMTP relay: smtp.* (host, port, security, login, limits).

config.yaml ─► config (which nests these) ─► smtp; every error names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from digest.settings.base import SettingsModel


class SmtpSettings(SettingsModel):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    ca_file: Path | None = None
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout: float = Field(30.0, gt=0)
    max_connections: int = Field(4, ge=1, le=64)
    rate_limit: float = Field(0.0, ge=0)
    # Timeouts in a row (over a process's connections) after which a run stops: a relay that
    # hangs would otherwise cost smtp.timeout per message.
    max_timeouts: int = Field(3, ge=1)
