"""store.journal: a sending thread's journal of accepted messages, and a taker reading it.

The bound it gives a killed sender (at most the message on the wire per connection) is tested
with real senders killed by SIGKILL in tests/delivery/test_faults.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from digest.store import open_store
from digest.store.journal import Journal, find_journals, journal_dir, read_journals
from digest.store.models import (
    D_PENDING,
    D_SENDING,
    D_SENT,
    deliveries_table,
    utcnow,
    workers_table,
)
from digest.store.runs import create_run
from digest.store.subscribers import add_subscriber
from digest.store.workers import IN_FLIGHT_MARK, register_worker, take_over_dead_claims
from digest.store.write_lock import writing
from tests.helpers.site_fixtures import AS_OF


def test_a_journal_is_removed_once_the_database_holds_all_of_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    assert journal_dir(url) == tmp_path / "digest.db.senders"
    kept = Journal.open(url, "host:12:abc", 1)
    done = Journal.open(url, "host:12:abc", 2)
    assert kept is not None and done is not None
    for journal in (kept, done):
        journal.write(7, "<m7@example.com>", "250 2.0.0 Ok:\tqueued\nas X")
        journal.write(8, "<m8@example.com>", "250 ok")
    done.recorded(2)
    kept.recorded(1)
    kept.close()
    done.close()
    assert find_journals(url, "host:12:abc") == [kept.path]
    # A torn last line (no newline) is left out; the reply's tab and newline were flattened.
    with kept.path.open("ab") as file:
        file.write(b"9\t<m9@example.com>\t250 ok")
    entries = read_journals([kept.path])
    assert [(e.delivery_id, e.message_id, e.reply) for e in entries] == [
        (7, "<m7@example.com>", "250 2.0.0 Ok: queued / as X"),
        (8, "<m8@example.com>", "250 ok"),
    ]
    assert abs((entries[0].sent_at - utcnow()).total_seconds()) < 3600


def test_no_journal_for_a_database_in_memory() -> None:
    assert journal_dir("sqlite://") is None
    assert Journal.open("sqlite:///:memory:", "host:1:x", 1) is None


def test_a_taker_records_the_dead_senders_journal_and_counts_one_per_batch(
    migrated_database_url: str,
) -> None:
    store = open_store(migrated_database_url)
    for i in range(24):
        add_subscriber(store, f"u{i:02d}@example.com", all_digests=True)
    run_id = create_run(store, "weekly", AS_OF, ["p1"], lambda _cats, _nb: ("p1",))
    assert run_id
    with store.session() as session:
        ids = sorted(session.scalars(select(deliveries_table.c.id)))
    old = utcnow() - timedelta(hours=1)
    # Two dead senders that kept a database window of 16: one left its journals, one none.
    journaled = register_worker(store, mark_window=16)
    silent = register_worker(store, mark_window=16)
    with writing(store) as conn:
        conn.execute(
            update(workers_table)
            .where(workers_table.c.id.in_([journaled, silent]))
            .values(heartbeat_at=old)
        )
        for rows, worker, at in (
            (ids[0:8], journaled, old),  # its thread 1's batch
            (ids[8:16], journaled, old + timedelta(seconds=1)),  # its thread 2's
            (ids[16:24], silent, old),
        ):
            conn.execute(
                update(deliveries_table)
                .where(deliveries_table.c.id.in_(rows))
                .values(status=D_SENDING, claimed_by=worker, claimed_at=at)
            )
    one = Journal.open(migrated_database_url, journaled, 1)
    two = Journal.open(migrated_database_url, journaled, 2)
    assert one is not None and two is not None
    for delivery_id in ids[0:3]:
        one.write(delivery_id, f"<{delivery_id}@example.com>", "250 ok")
    two.write(ids[8], f"<{ids[8]}@example.com>", "250 ok")
    one.close()
    two.close()

    with writing(store) as conn:
        applied = take_over_dead_claims(conn, run_id, "taker:1:x", utcnow())
    assert sorted(applied) == sorted([one.path, two.path])
    with store.session() as session:
        rows = {
            r.id: r
            for r in session.execute(
                select(
                    deliveries_table.c.id,
                    deliveries_table.c.status,
                    deliveries_table.c.message_id,
                    deliveries_table.c.last_reply,
                )
            )
        }
    sent = {i for i, r in rows.items() if r.status == D_SENT}
    assert sent == {*ids[0:3], ids[8]}
    assert rows[ids[0]].message_id == f"<{ids[0]}@example.com>"
    in_flight = {i for i, r in rows.items() if r.last_reply == IN_FLIGHT_MARK}
    # The journaled sender: the message after its journal's last line, per batch. The other:
    # its whole window (all 8 of the batch).
    assert in_flight == {ids[3], ids[9], *ids[16:24]}
    assert {r.status for i, r in rows.items() if i not in sent} == {D_PENDING}
    store.dispose()
