"""delivery.mark_window: a window of sent marks in one commit, with the next statuses read.

The bounds it keeps under a crash and an unsubscribe are tested with real senders in
test_faults.py and test_send_guarantees.py; here, the recorder's one call and the count a
taker makes of a dead sender's window.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from digest.delivery.run import send_digest
from digest.errors import ConfigError
from digest.settings import MAX_MARK_WINDOW
from digest.store import Store, open_store
from digest.store.models import (
    D_SENDING,
    D_SENT,
    UNSUBSCRIBED,
    deliveries_table,
    subscribers_table,
    utcnow,
    workers_table,
)
from digest.store.recorder import Recorder, SentMark
from digest.store.runs import create_run, history
from digest.store.subscribers import add_subscriber
from digest.store.workers import IN_FLIGHT_MARK, register_worker, take_over_dead_claims
from digest.store.write_lock import writing
from tests.conftest import SmtpServer
from tests.helpers.processes import make_busy_site, wait_for
from tests.helpers.site_fixtures import AS_OF, make_site


def _run_of(store: Store, emails: list[str]) -> tuple[int, dict[str, int], dict[str, int]]:
    """A run to every given (active) subscriber: (run id, email -> delivery id, -> subscriber)."""
    for email in emails:
        add_subscriber(store, email, all_digests=True)
    run_id = create_run(store, "weekly", AS_OF, ["p1"], lambda _cats, _nb: ("p1",))
    assert run_id
    with store.session() as session:
        rows = session.execute(
            select(deliveries_table.c.id, subscribers_table.c.id, subscribers_table.c.email)
            .join(subscribers_table, subscribers_table.c.id == deliveries_table.c.subscriber_id)
            .where(deliveries_table.c.run_id == run_id)
        ).all()
    return run_id, {r[2]: r[0] for r in rows}, {r[2]: r[1] for r in rows}


@pytest.mark.parametrize("window", [1, 3])
def test_settle_records_the_window_and_reads_every_status(
    migrated_database_url: str, window: int
) -> None:
    store = open_store(migrated_database_url)
    emails = [f"u{i}@example.com" for i in range(6)]
    _, deliveries, subscribers = _run_of(store, emails)
    # u1 left; u2 is on another digest only; u3 is erased.
    with writing(store) as conn:
        conn.execute(
            update(subscribers_table)
            .where(subscribers_table.c.email == "u1@example.com")
            .values(status=UNSUBSCRIBED)
        )
        conn.execute(
            update(subscribers_table)
            .where(subscribers_table.c.email == "u2@example.com")
            .values(all_digests=False)
        )
    erased = subscribers["u3@example.com"] + 1000
    recorder = Recorder(store, "weekly")
    try:
        marks = [
            SentMark(deliveries[e], f"<m{i}@example.com>", "250 ok")
            for i, e in enumerate(emails[:window])
        ]
        asked = [subscribers[e] for e in ("u0@example.com", "u1@example.com", "u2@example.com")]
        statuses = recorder.settle(marks, [*asked[:window], erased])
        # Only the marks, as at the end of a batch.
        recorder.settle([SentMark(deliveries["u5@example.com"], "<m5@example.com>", "250")], ())
    finally:
        recorder.close()
    expected = dict(zip(asked, ["active", "unsubscribed", "off the digest"], strict=True))
    assert statuses == {**{a: expected[a] for a in asked[:window]}, erased: None}
    with store.session() as session:
        rows = dict(
            session.execute(
                select(deliveries_table.c.id, deliveries_table.c.message_id).where(
                    deliveries_table.c.status == D_SENT
                )
            ).all()
        )
    sent = [*emails[:window], "u5@example.com"]
    assert rows == {deliveries[e]: f"<m{emails.index(e)}@example.com>" for e in sent}, (
        "every mark of the window committed"
    )
    store.dispose()


def test_a_taker_counts_the_dead_senders_window_per_batch(migrated_database_url: str) -> None:
    store = open_store(migrated_database_url)
    emails = [f"u{i:02d}@example.com" for i in range(40)]
    run_id, deliveries, _ = _run_of(store, emails)
    ids = sorted(deliveries.values())
    old = utcnow() - timedelta(hours=1)
    windowed = register_worker(store, mark_window=4)
    gone = "elsewhere:1:gone"  # a worker row cleared long ago: the largest window
    legacy = register_worker(store)  # as a row from before windows: NULL
    with writing(store) as conn:
        conn.execute(
            update(workers_table)
            .where(workers_table.c.id == legacy)
            .values(mark_window=None, heartbeat_at=old)
        )
        conn.execute(
            update(workers_table).where(workers_table.c.id == windowed).values(heartbeat_at=old)
        )

    def claim(rows: list[int], worker: str, at: datetime) -> None:
        with writing(store) as conn:
            conn.execute(
                update(deliveries_table)
                .where(deliveries_table.c.id.in_(rows))
                .values(status=D_SENDING, claimed_by=worker, claimed_at=at)
            )

    first, second = old, old + timedelta(seconds=1)
    claim(ids[0:10], windowed, first)  # two batches of one windowed sender: 4 each
    claim(ids[10:20], windowed, second)
    claim(ids[20:30], legacy, first)  # one at a time: 1
    claim(ids[30:40], gone, first)  # unknown: up to MAX_MARK_WINDOW (here all 10)
    with writing(store) as conn:
        take_over_dead_claims(conn, run_id, "taker:1:x", utcnow())
    with store.session() as session:
        marked = set(
            session.scalars(
                select(deliveries_table.c.id).where(deliveries_table.c.last_reply == IN_FLIGHT_MARK)
            )
        )
        still_claimed = session.scalar(
            select(func.count()).where(deliveries_table.c.status == D_SENDING)
        )
    assert marked == {*ids[0:4], *ids[10:14], ids[20], *ids[30 : 30 + min(10, MAX_MARK_WINDOW)]}
    assert still_claimed == 0  # every dead claim is pending again
    store.dispose()


@pytest.mark.parametrize("value", [0, MAX_MARK_WINDOW + 1, "many"])
def test_a_bad_mark_window_is_a_config_error(tmp_path: Path, value: object) -> None:
    site = make_site(
        tmp_path / "site", "sqlite:///x.db", 25, extra={"delivery": {"mark_window": value}}
    )
    with pytest.raises(ConfigError, match=r"delivery\.mark_window"):
        site.settings()


def test_the_workers_row_keeps_its_window(migrated_database_url: str) -> None:
    store = open_store(migrated_database_url)
    worker = register_worker(store, mark_window=7)
    with store.session() as session:
        window = session.execute(
            select(workers_table.c.mark_window).where(workers_table.c.id == worker)
        ).scalar_one()
    assert window == 7
    store.dispose()


def test_on_a_slow_relay_the_marks_wait_half_a_second_not_a_window(
    tmp_path: Path, migrated_database_url: str, slow_server: SmtpServer
) -> None:
    # 0.25 s a message: a window of 16 would hold 4 s of sent messages unrecorded; the time
    # bound (send_loop.MARK_WINDOW_SECONDS) records them at least every half second.
    handler = slow_server.handler
    handler.delay = 0.25  # type: ignore[attr-defined]
    site = make_busy_site(tmp_path, migrated_database_url, slow_server.port, 12, 1)
    store = site.store()
    sender = threading.Thread(
        target=send_digest, args=(site.settings(), store, "weekly"), kwargs={"as_of": AS_OF}
    )
    sender.start()
    try:
        wait_for(lambda: len(handler.messages) >= 8)
        with store.session() as session:
            marked = session.scalar(select(func.count()).where(deliveries_table.c.status == D_SENT))
        arrived = len(handler.messages)
    finally:
        handler.delay = 0  # type: ignore[attr-defined]
        sender.join(timeout=60)
    assert not sender.is_alive()
    # At most the messages of the last half second (two at 0.25 s), and the one on the wire.
    assert marked is not None and marked >= arrived - 4, (marked, arrived)
    with store.session() as session:
        (run,) = history(session)
    assert (run.sent, run.pending) == (12, 0)
