"""The bounce, VERP and DKIM keys of the config: defaults, paths, and one clear error each."""

from __future__ import annotations

import logging
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from digest.cli.app import State
from digest.cli.app import _filter as app_filter
from digest.config import load_settings
from digest.errors import ConfigError

BASE = """\
site:
  title: Example Blog
  url: https://blog.example.com
email:
  from: "Example Blog <news@example.com>"
"""


def write(tmp_path: Path, extra: str, email_extra: str = "") -> Path:
    (tmp_path / "_posts").mkdir(exist_ok=True)
    text = BASE + textwrap.indent(textwrap.dedent(email_extra), "  ") + textwrap.dedent(extra)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_change_nothing(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    assert settings.email.bounce_address is None and settings.email.dkim is None
    assert settings.bounces.soft_limit == 3
    assert settings.bounces.soft_window == timedelta(days=30)
    assert settings.bounces.imap is None and settings.bounces.schedule is None
    assert settings.bounces.webhooks.ses is None


def test_every_key_typed_and_paths_resolved(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "dkim.pem").write_text("key")
    (tmp_path / "imap-ca.pem").write_text("ca")
    extra = """\
    bounces:
      soft_limit: 5
      soft_window: 2w
      schedule: "*/15 * * * *"
      imap:
        host: imap.example.com
        username: bounces
        password: ${IMAP_PASSWORD}
        processed_folder: Processed
        ca_file: imap-ca.pem
      webhooks:
        ses: {topic_arns: ["arn:aws:sns:eu-west-1:123456789012:bounces"]}
        mailgun: {signing_key: "${MAILGUN_KEY}"}
        postmark: {secret: "${POSTMARK_SECRET}", username: postmark}
        sendgrid: {public_key: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}
    """
    email = """\
    bounce_address: Bounces@Example.com
    dkim: {domain: Example.com, selector: news, private_key_file: keys/dkim.pem}
    """
    env = {"IMAP_PASSWORD": "imap-pw-123", "MAILGUN_KEY": "mg-key", "POSTMARK_SECRET": "pm"}
    settings = load_settings(write(tmp_path, extra, email), environ=env)
    assert settings.email.bounce_address == "Bounces@example.com"
    dkim = settings.email.dkim
    assert dkim is not None and dkim.domain == "example.com"
    assert dkim.private_key_file == tmp_path / "keys" / "dkim.pem"
    bounces = settings.bounces
    assert (bounces.soft_limit, bounces.soft_window) == (5, timedelta(weeks=2))
    assert bounces.schedule == "*/15 * * * *"
    assert bounces.imap is not None and bounces.imap.port == 993
    assert bounces.imap.ca_file == tmp_path / "imap-ca.pem"
    assert bounces.imap.password.get_secret_value() == "imap-pw-123"
    assert "imap-pw-123" not in repr(settings)
    hooks = bounces.webhooks
    assert hooks.ses is not None and hooks.ses.topic_arns[0].endswith(":bounces")
    assert hooks.mailgun is not None and hooks.mailgun.signing_key.get_secret_value() == "mg-key"


@pytest.mark.parametrize(
    ("extra", "email_extra", "message"),
    [
        ("", "bounce_address: bounces+x@example.com\n", "email.bounce_address: 'bounces+x@"),
        ("", "bounce_address: not-an-address\n", "email.bounce_address: "),
        (
            "",
            "dkim: {domain: example.com, selector: news, private_key_file: missing.pem}\n",
            "email.dkim.private_key_file: file",
        ),
        (
            "",
            "dkim: {domain: example.com, selector: 'bad selector', private_key_file: k}\n",
            "email.dkim.selector: 'bad selector' is not a DNS name",
        ),
        ("bounces: {soft_window: soon}\n", "", "bounces.soft_window: 'soon' is not a duration"),
        ("bounces: {soft_limit: 0}\n", "", "bounces.soft_limit: "),
        (
            "bounces: {schedule: every hour}\n",
            "",
            "bounces.schedule: 'every hour' has 2 fields; a crontab has 5",
        ),
        (
            "bounces: {imap: {host: h, username: u, pasword: p}}\n",
            "",
            "bounces.imap.pasword: unknown key",
        ),
        (
            "bounces: {imap: {host: h, username: u, security: none}}\n",
            "",
            "bounces.imap.security: ",
        ),
        ("bounces: {webhooks: {sparkpost: {}}}\n", "", "bounces.webhooks.sparkpost: unknown key"),
        ("bounces: {schedule: '*/5 * * * *'}\n", "", "bounces.schedule is set but bounces.imap"),
    ],
)
def test_each_bad_key_is_named(tmp_path: Path, extra: str, email_extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, extra, email_extra), environ={})
    assert message in str(info.value)


def test_the_log_filter_knows_the_bounce_secrets(tmp_path: Path) -> None:
    extra = """\
    bounces:
      imap: {host: imap.example.com, username: b, password: imap-secret-pw}
      webhooks:
        mailgun: {signing_key: mailgun-secret-key}
        postmark: {secret: postmark-secret}
    """
    state = State(config_path=str(write(tmp_path, extra)))
    assert state.settings.bounces.imap is not None
    record = logging.LogRecord(
        "digest",
        logging.WARNING,
        __file__,
        1,
        "%s %s %s",
        ("imap-secret-pw", "mailgun-secret-key", "postmark-secret"),
        None,
    )
    app_filter.filter(record)
    assert record.getMessage() == "*** *** ***"
