"""`digest bounces`: read bounce mail from a local source or the IMAP mailbox and act on it.

cli ─► reading ─► sources / imap ─► mail ─► policy; returns the counts the command prints.
Each message is read on its own: one that cannot be (too large, too deep) is counted `ignored`
and marked done like any other, and the rest go on.
"""

from __future__ import annotations

from datetime import datetime
from typing import BinaryIO

from digest.bounces.imap import ImapAccount, open_mailbox
from digest.bounces.mail import UnreadableMessageError, read_report
from digest.bounces.policy import BouncePolicy, Tally, apply_report
from digest.bounces.sources import Oversized, read_local
from digest.store import Store

# bounces.max_message_bytes: a bounce with the original attached is tens of KB.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def read_bounces_from(
    store: Store,
    policy: BouncePolicy,
    source: str,
    *,
    stdin: BinaryIO,
    now: datetime,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Tally:
    """Act on every message in SOURCE (`-`, a Maildir folder, an mbox or message file)."""
    tally = Tally()
    for raw in read_local(source, stdin, max_bytes=max_bytes):
        tally.read += 1
        tally.add(_act_on(store, policy, raw, now, max_bytes))
    return tally


def read_bounces_imap(
    store: Store,
    policy: BouncePolicy,
    account: ImapAccount,
    *,
    now: datetime,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Tally:
    """Act on every message not yet done in the IMAP folder, then move or flag it; one that
    another reader took meanwhile is left to it."""
    tally = Tally()
    with open_mailbox(account) as mailbox:
        for message in mailbox.unprocessed(max_bytes):
            tally.read += 1
            raw = message.raw if message.raw is not None else Oversized(max_bytes)
            tally.add(_act_on(store, policy, raw, now, max_bytes))
            # Only now: a crash before this line leaves the message to be read again, and
            # the processed-report key makes that second reading change nothing.
            mailbox.mark_done(message.uid)
    return tally


def _act_on(
    store: Store, policy: BouncePolicy, raw: bytes | Oversized, now: datetime, max_bytes: int
) -> Tally:
    if isinstance(raw, Oversized):
        return Tally.of("ignored", f"larger than bounces.max_message_bytes ({max_bytes} bytes)")
    try:
        report = read_report(raw)
    except UnreadableMessageError as exc:
        return Tally.of("ignored", f"unreadable: {exc}")
    return apply_report(store, policy, report, now=now)
