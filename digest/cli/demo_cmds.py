"""`digest demo`: the door onto digest.demo.run_demo; prints what it did."""

from __future__ import annotations

from pathlib import Path

import click

from digest.demo import run_demo


@click.command()
def demo() -> None:
    """Run the whole job here: example posts, subscribers, a real SMTP send into demo-outbox/."""
    result = run_demo(Path.cwd())
    click.echo(f"demo folder:  {result.folder}")
    click.echo(f"posts:        {result.posts_copied} example posts copied to _posts/")
    click.echo(f"config:       {result.config.name} (SQLite database digest.db)")
    for report in result.reports:
        click.echo(
            f"sent:         digest {report.digest!r} as of {report.as_of.isoformat()}: "
            f"{report.posts} new posts, {report.sent} sent, {report.failed} failed, "
            f"{report.pending} pending"
        )
    click.echo("received by the capture SMTP server:")
    for rcpt, subject, path in result.received:
        click.echo(f"  {rcpt:<22} {subject}  -> {path.relative_to(result.folder)}")
    for line in result.skipped:
        click.echo(f"  no email:    {line}")
    click.echo(f"preview:      {result.preview.name} (open it in a browser)")
    click.echo("next:         digest subscribers list | digest posts | digest preview weekly")
