"""`digest bounces [SOURCE]`: read bounce and complaint mail and act on it (a thin door).

cli ─► bounces.reading (local SOURCE or bounces.imap) ─► policy; prints the counts.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from digest.bounces.reading import read_bounces_from, read_bounces_imap
from digest.bounces.setup import bounce_policy, imap_account
from digest.cli.app import State, echo_json, pass_state
from digest.store import open_store


@click.command("bounces")
@click.argument("source", required=False, metavar="[SOURCE]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json")),
    default="table",
    show_default=True,
    help=(
        "table: one line; json: the counts read, hard, soft, complaints, unmatched, ignored, "
        "duplicates, and reasons (why reports were unmatched or ignored, with counts)."
    ),
)
@pass_state
def bounces_cmd(state: State, source: str | None, fmt: str) -> None:
    """Read bounces (RFC 3464 and others) and complaints (ARF) and act on them.

    SOURCE is a Maildir folder, an mbox file, or - for one message on stdin (an MTA alias);
    without it, the IMAP mailbox in bounces.imap. Hard bounce: bounced; soft bounces:
    bounced at bounces.soft_limit; complaint: unsubscribed. A report seen before changes
    nothing.
    """
    settings = state.settings
    policy = bounce_policy(settings)
    account = imap_account(settings) if source is None else None
    now = datetime.now(UTC)
    cap = settings.bounces.max_message_bytes
    with open_store(settings.database.url) as store:
        if account is not None:
            tally = read_bounces_imap(store, policy, account, now=now, max_bytes=cap)
        else:
            stdin = sys.stdin.buffer
            tally = read_bounces_from(
                store, policy, str(source), stdin=stdin, now=now, max_bytes=cap
            )
    if fmt == "json":
        echo_json(tally.as_json())
    else:
        click.echo(tally.describe())
