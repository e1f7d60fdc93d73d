"""`digest db ...`: the door onto digest.store.migrate (create or migrate the schema).

Other commands migrate on first use too; this one does it on purpose and says where it is.
"""

from __future__ import annotations

import click

from digest.cli.app import State, pass_state
from digest.store import masked_url, open_store
from digest.store.migrate import current_revision, upgrade_schema


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_state
def upgrade_cmd(state: State) -> None:
    """Create or migrate the schema to the newest revision (safe to run again)."""
    with open_store(state.settings.database.url, upgrade=False) as store:
        before = current_revision(store)
        head = upgrade_schema(store)
    where = masked_url(store.url)
    if before == head:
        click.echo(f"database {where}: already at revision {head} (newest)")
    else:
        click.echo(f"database {where}: upgraded from {before or 'empty'} to revision {head}")
