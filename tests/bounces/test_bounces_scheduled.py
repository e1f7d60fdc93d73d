"""bounces.schedule: `digest schedule` reads the bounce mailbox (a real Dovecot) on its crontab."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import load_settings
from digest.schedule.scheduler import Scheduler
from digest.store import open_store
from tests.helpers.bounce_config import write_config
from tests.helpers.bounce_fixtures import EXPECTED_STATUS, sample, sample_names, statuses
from tests.helpers.imap_fixtures import PASSWORD, USER, Dovecot, running_dovecot
from tests.helpers.scheduling import Running


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def test_the_scheduler_reads_the_mailbox_on_its_crontab(
    tmp_path: Path, migrated_sqlite_url: str, dovecot: Dovecot
) -> None:
    client = dovecot.client()
    try:
        client.create("Scheduled")
        for name in sample_names():
            client.append("Scheduled", None, None, sample(name).replace(b"\n", b"\r\n"))
    finally:
        client.logout()
    config = write_config(
        tmp_path,
        migrated_sqlite_url,
        "bounces:\n"
        '  schedule: "*/5 * * * *"\n'
        "  imap:\n"
        f"    host: {dovecot.host}\n"
        f"    port: {dovecot.port}\n"
        f"    username: {USER}\n"
        f"    password: {PASSWORD}\n"
        "    folder: Scheduled\n"
        f"    ca_file: {dovecot.ca_file}\n"
        "digests:\n"
        "  weekly: {schedule: '0 9 * * mon'}\n",
    )
    settings = load_settings(config)
    store = open_store(migrated_sqlite_url)
    try:
        scheduler = Scheduler(settings, store)
        assert scheduler.bounce_trigger is not None  # the crontab from the config
        often = IntervalTrigger(seconds=0.25, timezone=settings.site.tz)  # four fires a second
        with Running(Scheduler(settings, store, bounce_trigger=often)):
            deadline = time.monotonic() + 20
            while statuses(store) != EXPECTED_STATUS and time.monotonic() < deadline:
                time.sleep(0.2)
        assert statuses(store) == EXPECTED_STATUS
    finally:
        store.dispose()
