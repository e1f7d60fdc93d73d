"""The bounce side's values from the settings: the policy, the IMAP account, the webhook secrets.

config ─► setup ─► reading (cli, scheduler) and webhooks (web); one place that reads these keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.bounces.imap import ImapAccount
from digest.bounces.policy import BouncePolicy
from digest.bounces.webhooks import WebhookSettings
from digest.errors import BadInputError
from digest.tokens import check_secret

if TYPE_CHECKING:
    from digest.settings import Settings


def bounce_policy(settings: Settings) -> BouncePolicy:
    """The policy; VERP codes need web.secret, so it must be set with email.bounce_address."""
    secret = settings.web.secret.get_secret_value()
    if settings.email.bounce_address:
        check_secret(secret)
    return BouncePolicy(
        secret=secret,
        bounce_address=settings.email.bounce_address,
        soft_limit=settings.bounces.soft_limit,
        soft_window=settings.bounces.soft_window,
        match_window=settings.bounces.match_window,
    )


def imap_account(settings: Settings) -> ImapAccount:
    """bounces.imap as an account, or BadInputError saying what to give instead."""
    imap = settings.bounces.imap
    if imap is None:
        raise BadInputError(
            "no SOURCE given and bounces.imap is not set in "
            f"{settings.source}: give a Maildir folder, an mbox file or - for stdin"
        )
    return ImapAccount(
        host=imap.host,
        port=imap.port,
        security=imap.security,
        username=imap.username,
        password=imap.password.get_secret_value(),
        folder=imap.folder,
        processed_folder=imap.processed_folder,
        ca_file=imap.ca_file,
        timeout=imap.timeout,
    )


def webhook_settings(settings: Settings) -> WebhookSettings:
    """Which relays may call /webhooks/<provider>, with their secrets."""
    hooks = settings.bounces.webhooks
    return WebhookSettings(
        ses_topic_arns=frozenset(hooks.ses.topic_arns) if hooks.ses else frozenset(),
        mailgun_signing_key=hooks.mailgun.signing_key.get_secret_value() if hooks.mailgun else None,
        postmark_secret=hooks.postmark.secret.get_secret_value() if hooks.postmark else None,
        postmark_username=hooks.postmark.username if hooks.postmark else None,
        sendgrid_public_key=hooks.sendgrid.public_key if hooks.sendgrid else None,
    )
