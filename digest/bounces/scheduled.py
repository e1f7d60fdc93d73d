"""The scheduler's bounce job (bounces.schedule): read bounces.imap once, log what it did.

scheduler ─► scheduled ─► reading ─► policy; a failure is logged and the next fire tries again.
"""

from __future__ import annotations

import logging

from digest.bounces.reading import read_bounces_imap
from digest.bounces.setup import bounce_policy, imap_account
from digest.errors import DigestError
from digest.settings import Settings
from digest.store import Store
from digest.store.models import utcnow

log = logging.getLogger("digest.schedule.scheduler")


def read_scheduled_bounces(settings: Settings, store: Store) -> None:
    """One read of the bounce mailbox; errors become one log line, not a stopped scheduler."""
    try:
        tally = read_bounces_imap(
            store,
            bounce_policy(settings),
            imap_account(settings),
            now=utcnow(),
            max_bytes=settings.bounces.max_message_bytes,
        )
    except DigestError as exc:
        log.error("bounces: %s (the next fire tries again)", exc.message)
        return
    log.info("bounces: %s", tally.describe())
