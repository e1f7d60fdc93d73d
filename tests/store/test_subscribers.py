"""The subscriber library calls on real SQLite files and PostgreSQL schemas."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.errors import BadInputError, InvalidAddressError, NotFoundError
from digest.store import Store, open_store
from digest.store.models import (
    ACTIVE,
    BOUNCED,
    D_FAILED,
    D_PENDING,
    D_SENDING,
    D_SENT,
    PENDING,
    UNSUBSCRIBED,
    Delivery,
    Run,
    Segment,
    Subscriber,
)
from digest.store.recipients import active_subscribers
from digest.store.subscriber_csv import export_csv, import_csv
from digest.store.subscribers import (
    add_subscriber,
    clean_categories,
    find_subscriber,
    list_subscribers,
    remove_subscriber,
    set_status,
    unsubscribe,
)

T0 = datetime(2025, 11, 27, 9, 0, tzinfo=UTC)


def _count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) or 0


def test_add_creates_an_active_subscriber(store: Store) -> None:
    row, created = add_subscriber(
        store, " Ann@Example.COM ", name=" Ann ", categories=["News", " news", "", "Tech "], now=T0
    )
    assert created
    assert row.email == "Ann@example.com"  # domain lower-cased, local part kept
    assert row.name == "Ann"
    assert row.categories == ("News", "Tech")
    assert row.status == ACTIVE
    assert row.created_at == T0 and row.created_at.tzinfo is not None


def test_emails_are_case_insensitive_and_unique(store: Store) -> None:
    add_subscriber(store, "ann@example.com", name="Ann", now=T0)
    row, created = add_subscriber(store, "ANN@EXAMPLE.COM", categories=["tech"], now=T0)
    assert not created
    assert (row.email, row.name, row.categories) == ("ann@example.com", "Ann", ("tech",))
    assert _count(store) == 1
    found = find_subscriber(store, "Ann@Example.Com")
    assert found is not None and found.id == row.id


def test_update_changes_only_the_fields_given(store: Store) -> None:
    add_subscriber(store, "ann@example.com", name="Ann", categories=["news"], now=T0)
    later = T0 + timedelta(hours=1)
    row, _ = add_subscriber(store, "ann@example.com", name="Annie", now=later)
    assert (row.name, row.categories, row.updated_at) == ("Annie", ("news",), later)
    row, _ = add_subscriber(store, "ann@example.com", categories=[], now=later)
    assert (row.name, row.categories) == ("Annie", ())
    unchanged, _ = add_subscriber(store, "ann@example.com", now=later + timedelta(hours=1))
    assert unchanged.updated_at == later


@pytest.mark.parametrize("kept", [UNSUBSCRIBED, BOUNCED])
def test_unsubscribed_or_bounced_keep_their_status_unless_resubscribed(
    store: Store, kept: str
) -> None:
    row, _ = add_subscriber(store, "ann@example.com", now=T0)
    set_status(store, row.id, kept, "test", now=T0)
    again, created = add_subscriber(store, "ann@example.com", name="Ann", now=T0)
    assert not created
    assert (again.status, again.name) == (kept, "Ann")
    back, _ = add_subscriber(store, "ann@example.com", resubscribe=True, now=T0)
    assert (back.status, back.status_reason) == (ACTIVE, "resubscribed")


def test_add_activates_a_pending_sign_up_but_never_downgrades(store: Store) -> None:
    pending, _ = add_subscriber(store, "pat@example.com", status=PENDING, now=T0)
    assert pending.status == PENDING
    active, _ = add_subscriber(store, "pat@example.com", now=T0)
    assert active.status == ACTIVE
    still, _ = add_subscriber(store, "pat@example.com", status=PENDING, now=T0)
    assert still.status == ACTIVE


@pytest.mark.parametrize("address", ["not-an-address", "a@b@example.com", "ann@exa mple.com"])
def test_an_invalid_address_is_refused_and_nothing_written(store: Store, address: str) -> None:
    with pytest.raises(InvalidAddressError) as info:
        add_subscriber(store, address)
    assert address in str(info.value)
    assert info.value.exit_code == 2
    assert _count(store) == 0


@pytest.mark.parametrize("name", ["Ann\r\nBcc: all@example.com", "Ann\nX", "Ann\x00"])
def test_a_name_with_control_characters_is_refused(store: Store, name: str) -> None:
    with pytest.raises(InvalidAddressError, match="name"):
        add_subscriber(store, "ann@example.com", name=name)
    assert _count(store) == 0


def test_a_category_with_control_characters_is_refused() -> None:
    with pytest.raises(BadInputError, match="category"):
        clean_categories(["ok", "bad\ncat"])


def test_unsubscribe_and_unknown_addresses(store: Store) -> None:
    add_subscriber(store, "ann@example.com", now=T0)
    row = unsubscribe(store, "ANN@example.com", reason="web", now=T0)
    assert (row.status, row.status_reason) == (UNSUBSCRIBED, "web")
    for call in (unsubscribe, remove_subscriber):
        with pytest.raises(NotFoundError, match=r"nobody@example\.com") as info:
            call(store, "nobody@example.com")
        assert info.value.exit_code == 2
    with pytest.raises(NotFoundError, match="id 999"):
        set_status(store, 999, BOUNCED, "550")
    with pytest.raises(BadInputError, match="status 'gone'"):
        set_status(store, row.id, "gone", None)


def test_list_orders_by_creation_and_filters_by_status(store: Store) -> None:
    add_subscriber(store, "c@example.com", now=T0 + timedelta(minutes=2))
    add_subscriber(store, "a@example.com", now=T0)
    add_subscriber(store, "b@example.com", now=T0 + timedelta(minutes=1))
    unsubscribe(store, "b@example.com")
    assert [r.email for r in list_subscribers(store)] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    assert [r.email for r in list_subscribers(store, UNSUBSCRIBED)] == ["b@example.com"]
    with pytest.raises(BadInputError):
        list_subscribers(store, "gone")


def test_active_subscribers_for_the_snapshot(store: Store) -> None:
    a, _ = add_subscriber(store, "a@example.com", name="A", categories=["news"], now=T0)
    add_subscriber(store, "b@example.com", now=T0)
    add_subscriber(store, "p@example.com", status=PENDING, now=T0)
    unsubscribe(store, "b@example.com")
    with store.session() as session:
        assert active_subscribers(session, "weekly", T0) == [
            (a.id, "a@example.com", "A", ["news"], None)
        ]


def _delivery_rows(store: Store, subscriber_id: int, email: str) -> None:
    with store.session() as session:
        run = Run(digest="weekly", as_of=T0, post_ids=["_posts/x.md"])
        session.add(run)
        session.flush()
        segment = Segment(run_id=run.id, post_ids=["_posts/x.md"])
        session.add(segment)
        session.flush()
        for status in (D_PENDING, D_SENDING, D_SENT, D_FAILED):
            session.add(
                Delivery(
                    run_id=run.id,
                    segment_id=segment.id,
                    subscriber_id=subscriber_id,
                    status=status,
                    last_reply=f"550 5.1.1 <{email}>: no such user",
                )
            )
            # One delivery per (run, subscriber): a run for each status.
            run = Run(digest="weekly", as_of=T0, post_ids=[])
            session.add(run)
            session.flush()
            segment = Segment(run_id=run.id, post_ids=[])
            session.add(segment)
            session.flush()


def test_remove_erases_the_subscriber_and_their_personal_data(store: Store) -> None:
    ann, _ = add_subscriber(store, "ann@example.com", name="Ann", now=T0)
    bob, _ = add_subscriber(store, "bob@example.com", name="Bob", now=T0)
    _delivery_rows(store, ann.id, "ann@example.com")
    _delivery_rows(store, bob.id, "bob@example.com")
    removed = remove_subscriber(store, "ANN@example.com")
    assert removed.email == "ann@example.com"
    assert find_subscriber(store, "ann@example.com") is None
    with store.session() as session:
        rows = session.execute(
            sa.select(Delivery.subscriber_id, Delivery.status, Delivery.last_reply)
        ).all()
    anonymous = [r for r in rows if r.subscriber_id is None]
    # Unsent deliveries are gone; the sent and failed ones stay, with no link and no reply text.
    assert sorted(r.status for r in anonymous) == [D_FAILED, D_SENT]
    assert all(r.last_reply is None for r in anonymous)
    assert all("ann@example.com" not in (r.last_reply or "") for r in rows)
    assert sorted(r.status for r in rows if r.subscriber_id == bob.id) == sorted(
        (D_PENDING, D_SENDING, D_SENT, D_FAILED)
    )


# --- CSV -----------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "subs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_adds_updates_and_reports_bad_rows_by_line(store: Store, tmp_path: Path) -> None:
    add_subscriber(store, "old@example.com", name="Old", now=T0)
    add_subscriber(store, "same@example.com", name="Same", now=T0)
    add_subscriber(store, "gone@example.com", now=T0)
    unsubscribe(store, "gone@example.com")
    path = _write(
        tmp_path,
        "\ufeffEMAIL, Name ,Categories,extra\n"  # BOM, case and spaces in the header
        "ann@example.com,Ann,News;news; Tech ;,x\n"  # 2 added
        "not-an-address,X,,\n"  # 3 bad
        '"carl@example.com","Carl\nBcc: all",,\n'  # 4-5 bad: control char in name
        "OLD@example.com,Older,,\n"  # 6 updated
        "same@example.com,,,\n"  # 7 unchanged (empty name = not given)
        "gone@example.com,Gone,,\n"  # 8 updated, stays unsubscribed
        "\n"  # 9 blank: ignored
        "ann@EXAMPLE.com,Ann Again,,\n"  # 10 duplicate of line 2
        ",Nobody,,\n",  # 11 no address
    )
    report = import_csv(store, path, now=T0)
    assert (report.added, report.updated, report.unchanged) == (1, 2, 1)
    assert [line for line, _ in report.skipped] == [3, 4, 10, 11]
    reasons = dict(report.skipped)
    assert "not-an-address" in reasons[3]
    assert "control character" in reasons[4]
    assert "duplicate of line 2" in reasons[10]
    assert "no email address" in reasons[11]
    rows = {r.email: r for r in list_subscribers(store)}
    assert rows["ann@example.com"].categories == ("News", "Tech")
    assert rows["ann@example.com"].name == "Ann"
    assert rows["old@example.com"].name == "Older"
    assert rows["same@example.com"].name == "Same"
    assert (rows["gone@example.com"].name, rows["gone@example.com"].status) == (
        "Gone",
        UNSUBSCRIBED,
    )
    assert "carl@example.com" not in rows


def test_import_needs_an_email_column(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path, "name,address\nAnn,ann@example.com\n", "people.csv")
    with pytest.raises(BadInputError, match=r"people\.csv: no 'email' column") as info:
        import_csv(store, path)
    assert info.value.exit_code == 2
    assert _count(store) == 0


def test_import_refuses_a_file_that_is_not_utf8(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nann@example.com,Ann\nzoe@example.com,Zoë\n".encode("latin-1"))
    with pytest.raises(BadInputError, match=r"latin1\.csv: not UTF-8 text \(line 3"):
        import_csv(store, path)
    assert _count(store) == 0  # nothing written before the bad byte was found


def test_import_of_a_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"nope\.csv: cannot read"):
        import_csv(store, tmp_path / "nope.csv")


def test_import_in_batches_finds_existing_addresses(store: Store, tmp_path: Path) -> None:
    lines = ["email,categories"] + [f"u{i}@example.com,c{i % 3}" for i in range(2500)]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    first = import_csv(store, path, now=T0)
    assert (first.added, first.updated, first.unchanged, first.skipped) == (2500, 0, 0, [])
    lines[1] = "U0@EXAMPLE.COM,other"
    second = import_csv(store, io.StringIO("\n".join(lines) + "\n"), now=T0)
    assert (second.added, second.updated, second.unchanged) == (0, 1, 2499)
    assert _count(store) == 2500


def test_export_round_trip(store: Store, migrated_database_url: str, tmp_path: Path) -> None:
    add_subscriber(store, "ann@example.com", name="Ann, the first", categories=["News"], now=T0)
    add_subscriber(store, "bob@example.com", name='Bob "B"', categories=["a", "b"], now=T0)
    add_subscriber(store, "zoë@example.com", now=T0 + timedelta(seconds=1))
    unsubscribe(store, "bob@example.com")
    out = io.StringIO()
    assert export_csv(store, out) == 3
    text = out.getvalue()
    assert text.splitlines()[0] == "email,name,categories,status,created_at"  # CONTRACT's
    assert text.splitlines()[1] == (
        'ann@example.com,"Ann, the first",News,active,2025-11-27T09:00:00+00:00'
    )
    assert 'bob@example.com,"Bob ""B""",a;b,unsubscribed,' in text

    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    other = open_store(other_url)
    try:
        report = import_csv(other, io.StringIO(text), now=T0)
        assert (report.added, report.skipped) == (3, [])
        got = [(r.email, r.name, r.categories) for r in list_subscribers(other)]
    finally:
        other.dispose()
    assert got == [(r.email, r.name, r.categories) for r in list_subscribers(store)]


def test_export_and_import_round_trip_each_subscribers_digests(store: Store) -> None:
    add_subscriber(store, "ann@example.com", now=T0)  # every digest, future ones too
    add_subscriber(store, "bob@example.com", digests=["daily"], now=T0)
    add_subscriber(store, "cy@example.com", digests=["weekly", "monthly"], now=T0)
    out = io.StringIO()
    export_csv(store, out, digests=True)
    assert out.getvalue().splitlines()[0] == "email,name,categories,status,created_at,digests"
    cells = [line.rsplit(",", 1)[1] for line in out.getvalue().splitlines()[1:]]
    assert cells == ["*", "daily", "monthly;weekly"]

    # Everyone moved around since the export: importing it puts them back.
    add_subscriber(store, "ann@example.com", digests=["weekly"])
    add_subscriber(store, "bob@example.com", all_digests=True)
    add_subscriber(store, "cy@example.com", digests=["daily"])
    every = ["daily", "monthly", "weekly"]
    report = import_csv(store, io.StringIO(out.getvalue()), known_digests=every, now=T0)
    assert (report.added, report.updated, report.unchanged, report.skipped) == (0, 3, 0, [])
    got = {r.email: (r.all_digests, r.digests) for r in list_subscribers(store)}
    assert got == {
        "ann@example.com": (True, ()),
        "bob@example.com": (False, ("daily",)),
        "cy@example.com": (False, ("monthly", "weekly")),
    }
    again = import_csv(store, io.StringIO(out.getvalue()), known_digests=every, now=T0)
    assert (again.updated, again.unchanged) == (0, 3)

    # New rows take their cell too; --digest (digests=) wins over the cell; an empty cell
    # gives a new row every digest; a digest the config lacks skips the row.
    text = "email,digests\ndee@example.com,weekly\neve@example.com,\nfay@example.com,hourly\n"
    report = import_csv(store, io.StringIO(text), known_digests=every, now=T0)
    assert report.added == 2
    assert report.skipped == [
        (4, "no digest 'hourly' in the config (digests: daily, monthly, weekly)")
    ]
    forced = import_csv(store, io.StringIO(text), digests=["daily"], now=T0)
    assert (forced.added, forced.updated) == (1, 2)
    got = {r.email: (r.all_digests, r.digests) for r in list_subscribers(store)}
    assert got["dee@example.com"] == got["eve@example.com"] == got["fay@example.com"]
    assert got["fay@example.com"] == (False, ("daily",))
