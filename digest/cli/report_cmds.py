"""`digest report [--out FILE] [--days N]`: the list and its runs as one HTML file.

cli ─► report.build_report (store.stats, store.runs); the file is written beside the target
and renamed, so a failed report leaves no half-written file.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from digest.cli.app import State, pass_state
from digest.errors import BadInputError

DEFAULT_OUT = "report.html"


@click.command("report")
@click.option(
    "--out",
    metavar="FILE",
    default=DEFAULT_OUT,
    show_default=True,
    help="Write the HTML report to FILE.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=90,
    show_default=True,
    metavar="N",
    help="The period: the last N days.",
)
@pass_state
def report_cmd(state: State, out: str, days: int) -> None:
    """One self-contained HTML file with charts of the list and its runs.

    The file opens offline: subscribers over time by status, each run's sent, failed, bounced
    and complaints, bounce and complaint rates against the 0.1% and 0.3% lines, subscribers per
    category and digest; in site.lang.
    """
    from digest.report import build_report
    from digest.store import open_store

    settings = state.settings
    store = open_store(settings.database.url)
    try:
        page = build_report(settings, store, now=datetime.now(UTC), days=days)
    finally:
        store.dispose()
    target = Path(out)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    except OSError as exc:
        raise BadInputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise BadInputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    click.echo(f"wrote the report of the last {days} days to {target}")
