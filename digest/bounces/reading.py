"""`digest bounces`: read bounce mail from a local source or the IMAP mailbox and act on it.

cli ─► reading ─► sources / imap ─► mail ─► policy; returns the counts the command prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import BinaryIO

from digest.bounces.imap import ImapAccount, open_mailbox
from digest.bounces.mail import read_report
from digest.bounces.policy import BouncePolicy, Tally, apply_report
from digest.bounces.sources import read_local
from digest.store import Store


def read_bounces_from(
    store: Store, policy: BouncePolicy, source: str, *, stdin: BinaryIO, now: datetime
) -> Tally:
    """Act on every message in SOURCE (`-`, a Maildir folder, an mbox or message file)."""
    tally = Tally()
    for raw in read_local(source, stdin):
        tally.read += 1
        tally.add(apply_report(store, policy, read_report(raw), now=now))
    return tally


def read_bounces_imap(
    store: Store, policy: BouncePolicy, account: ImapAccount, *, now: datetime
) -> Tally:
    """Act on every message not yet done in the IMAP folder, then move or flag it."""
    tally = Tally()
    with open_mailbox(account) as mailbox:
        for message in mailbox.unprocessed():
            tally.read += 1
            tally.add(apply_report(store, policy, read_report(message.raw), now=now))
            # Only now: a crash before this line leaves the message to be read again, and
            # the processed-report key makes that second reading change nothing.
            mailbox.mark_done(message.uid)
    return tally
