"""The typed settings of the bounce side: email.dkim and bounces.* (policy, IMAP, webhooks).

config.yaml ─► config (which nests these) ─► bounces.setup, envelope; every error names the key.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from digest.crontab import check_crontab
from digest.settings.base import SettingsModel
from digest.settings.durations import parse_duration


class ImapSettings(SettingsModel):
    """bounces.imap: the mailbox `digest bounces` reads without SOURCE (TLS always verified)."""

    host: str
    port: int = Field(993, ge=1, le=65535)
    security: Literal["ssl", "starttls"] = "ssl"
    username: str
    password: SecretStr = SecretStr("")
    folder: str = "INBOX"
    processed_folder: str | None = None  # move processed messages here; else flag them
    ca_file: Path | None = None
    timeout: float = Field(30.0, gt=0)


class SesWebhookSettings(SettingsModel):
    topic_arns: tuple[str, ...] = ()


class MailgunWebhookSettings(SettingsModel):
    signing_key: SecretStr


class PostmarkWebhookSettings(SettingsModel):
    secret: SecretStr
    username: str | None = None


class SendgridWebhookSettings(SettingsModel):
    public_key: str


class WebhooksSettings(SettingsModel):
    """bounces.webhooks: the relays that may call /webhooks/<provider>, and their secrets."""

    ses: SesWebhookSettings | None = None
    mailgun: MailgunWebhookSettings | None = None
    postmark: PostmarkWebhookSettings | None = None
    sendgrid: SendgridWebhookSettings | None = None


class BouncesSettings(SettingsModel):
    soft_limit: int = Field(3, ge=1, le=100)
    soft_window: timedelta = timedelta(days=30)
    # Without a VERP code a report acts only on a delivery sent within this window.
    match_window: timedelta = timedelta(days=30)
    # A message larger than this is not read (counted ignored); a bounce is tens of KB.
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    imap: ImapSettings | None = None
    schedule: str | None = None  # crontab: the scheduler runs `digest bounces` on it
    webhooks: WebhooksSettings = WebhooksSettings()

    @field_validator("soft_window", "match_window", mode="before")
    @classmethod
    def _window(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        check_crontab(value)  # ValueError naming the field at fault, or "never fires"
        return value.strip()

    def secret_values(self) -> list[str]:
        """The secrets these keys hold (the IMAP password, webhook keys), for the log filter."""
        hooks = self.webhooks
        values = [
            self.imap.password.get_secret_value() if self.imap else "",
            hooks.mailgun.signing_key.get_secret_value() if hooks.mailgun else "",
            hooks.postmark.secret.get_secret_value() if hooks.postmark else "",
        ]
        return [value for value in values if value]

    @model_validator(mode="after")
    def _schedule_needs_imap(self) -> BouncesSettings:
        if self.schedule and self.imap is None:
            raise ValueError(
                "bounces.schedule is set but bounces.imap is not: the scheduler reads that mailbox"
            )
        return self
