"""`digest schedule [--dry-run]`: run the scheduler in the foreground, or show the next fires.

cli is a thin door: scheduler.Scheduler does the work; this wires config, store and logging.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click

from digest.cli.app import State, pass_state
from digest.schedule.lease import lease_ttl_from_env
from digest.schedule.scheduler import Scheduler, upcoming_fires, validate_schedules
from digest.store import open_store


def _fire_log_at_info() -> None:
    """One line per fire is the point of running it: show INFO even without -v."""
    logger = logging.getLogger("digest.schedule.scheduler")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


@click.command("schedule")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print each digest and its next fire time, then exit (takes no lease, writes nothing).",
)
@pass_state
def schedule_cmd(state: State, dry_run: bool) -> None:
    """Run the scheduler: each digest fires on its crontab in site.timezone.

    SIGTERM or SIGINT stops it cleanly. One scheduler per database: a second one refuses to start.
    """
    settings = state.settings
    if dry_run:
        now = datetime.now(UTC)
        zones: dict[str, set[str]] = {}
        local = [n for n, d in settings.digests.items() if d.deliver == "local_time"]
        if local:  # deliver: local_time: the zones of the subscribers decide the next fire
            from digest.store.editions import receiver_zones

            with open_store(settings.database.url) as store, store.session() as session:
                for name in local:
                    zones[name] = receiver_zones(session, name, settings.site.timezone, now)
        fires = upcoming_fires(settings, now, zones)
        # Columns line up: the names padded to the longest, the times are of one width.
        width = max((len(fire.digest) for fire in fires), default=0)
        times = max((len(fire.next_fire_at.isoformat()) for fire in fires), default=0)
        for fire in fires:
            click.echo(
                f"{fire.digest.ljust(width)}  {fire.next_fire_at.isoformat().ljust(times)}  "
                f"({fire.schedule}, {fire.timezone})"
            )
        return
    validate_schedules(settings)
    ttl = lease_ttl_from_env()
    _fire_log_at_info()
    with open_store(settings.database.url) as store:
        Scheduler(settings, store, lease_ttl=ttl).run(handle_signals=True)
