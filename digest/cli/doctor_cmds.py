"""`digest doctor`: check the setup a sender needs, one line per check with its fix.

cli door: load settings, call doctor.run_doctor, print a table or JSON; exit 1 on any fail.
"""

from __future__ import annotations

import click

from digest.cli.app import State, echo_json, pass_state, table_or_json_option
from digest.errors import EXIT_FAILED


@click.command("doctor")
@click.option(
    "--nameserver",
    metavar="HOST[:PORT]",
    help="Ask this DNS server instead of the system's resolver.",
)
@table_or_json_option
@pass_state
def doctor_cmd(state: State, nameserver: str | None, fmt: str) -> None:
    """Check the setup a sender needs: one line per check with pass, warn or fail, and the fix."""
    from digest.doctor import run_doctor

    checks = run_doctor(state.settings, nameserver=nameserver)
    if fmt == "json":
        echo_json([c.as_dict() for c in checks])
    else:
        width = max(len(c.check) for c in checks)
        for c in checks:
            click.echo(f"{c.status:<4}  {c.check:<{width}}  {c.detail}")
            if c.fix:
                click.echo(f"      {'':<{width}}  fix: {c.fix}")
        fails = sum(c.status == "fail" for c in checks)
        warns = sum(c.status == "warn" for c in checks)
        click.echo(f"{len(checks)} checks: {fails} fail, {warns} warn")
    if any(c.status == "fail" for c in checks):
        click.get_current_context().exit(EXIT_FAILED)
