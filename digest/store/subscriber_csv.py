"""Subscribers as CSV: importing a file in batches (bad rows reported by line), exporting.

cli (`digest subscribers import/export`) ─► store.subscriber_csv ─► the subscribers table.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.addresses import clean_name, email_key, normalise_email
from digest.errors import BadInputError
from digest.store import Store
from digest.store.import_formats import ImportedRow, read_export
from digest.store.models import ACTIVE, PENDING, Subscriber, Subscription, utcnow
from digest.store.subscribers import (
    IMPORT_PREFIX,
    KEPT_STATUSES,
    Consent,
    check_status,
    clean_timezone,
)
from digest.store.subscriptions import clean_categories, clean_digests

IMPORT_BATCH = 1000
EXPORT_HEADER = ("email", "name", "categories", "status", "created_at")  # as CONTRACT says
# The consent record (import reads it back): when they asked and confirmed, how, the IP's hash.
CONSENT_HEADER = ("consent_requested_at", "consent_confirmed_at", "consent_source", "consent_ip")
DIGESTS_COLUMN = "digests"  # added on request (export --with-digests)
EVERY_DIGEST = "*"  # the digests cell of a subscriber on every digest, future ones included


@dataclass
class ImportReport:
    """What an import did; `skipped` holds (line, reason) for each row left out, `added_by_status`
    the new subscribers by status, `unused_columns` the file's columns digest keeps nowhere."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    added_by_status: dict[str, int] = field(default_factory=dict)
    unused_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _CsvRow:
    line: int
    email: str
    key: str
    name: str | None  # None: the cell was empty or the column absent (field not given)
    categories: list[str] | None
    digests: list[str] | None = None  # the digests cell: None when empty or absent
    every_digest: bool = False  # the digests cell is `*`
    status: str | None = None  # the export's status (ours): None as `add` does
    consent: Consent = field(default_factory=Consent)
    timezone: str | None = None  # None: the cell was empty or the column absent

    def wanted(self, option: list[str] | None) -> tuple[bool, list[str]] | None:
        """(all_digests, digests) this row puts its subscriber on, `--digest` first; None
        leaves an existing subscriber's digests alone (a new one gets every digest)."""
        if option is not None:
            return False, option
        if self.every_digest:
            return True, []
        return (False, self.digests) if self.digests is not None else None


def _digests_cell(cell: str, known: Collection[str] | None) -> tuple[list[str] | None, bool]:
    """(digests, every digest) from a `;`-separated digests cell; ValueError naming a digest
    the config does not have."""
    if cell.strip() == EVERY_DIGEST:
        return None, True
    names = clean_digests(cell.split(";"))
    if not names:
        return None, False
    unknown = [name for name in names if known is not None and name not in known]
    if unknown:
        choices = ", ".join(known or ())
        raise ValueError(f"no digest {unknown[0]!r} in the config (digests: {choices})")
    return names, False


def _checked_rows(
    rows: Iterable[ImportedRow],
    report: ImportReport,
    known_digests: Collection[str] | None,
    source: str,
    ip_key: Callable[[str], str] | None,
) -> Iterable[_CsvRow]:
    """Valid rows, in file order; invalid ones go to report.skipped with their line."""
    first_line: dict[str, str] = {}
    for row in rows:
        line, where = row.line, f"{row.file}: " if row.file else ""
        if row.skip:
            report.skipped.append((line, where + row.skip))
            continue
        if not row.email.strip():
            report.skipped.append((line, where + "no email address"))
            continue
        try:
            address = normalise_email(row.email)
            name = clean_name(row.name) if row.name else None
            cats = clean_categories(row.categories) if row.categories else None
            digests, every = _digests_cell(row.digests, known_digests)
            zone = clean_timezone(row.timezone) or None if row.timezone else None
        except (ValueError, BadInputError) as exc:
            report.skipped.append((line, f"{where}{exc}"))
            continue
        key = email_key(address)
        if key in first_line:
            report.skipped.append((line, f"{where}{address}: duplicate of {first_line[key]}"))
            continue
        first_line[key] = f"{row.file} line {line}" if row.file else f"line {line}"
        ip = row.ip_hashed or (ip_key(row.ip) if row.ip and ip_key else None)
        consent = Consent(row.requested_at, row.confirmed_at, row.consent_source or source, ip)
        yield _CsvRow(line, address, key, name, cats, digests, every, row.status, consent, zone)


def _digests_of(session: Session, ids: list[int]) -> dict[int, list[str]]:
    """The chosen digests of these subscribers (those not on every digest), sorted."""
    out: dict[int, list[str]] = {}
    stmt = (
        select(Subscription.subscriber_id, Subscription.digest)
        .where(Subscription.subscriber_id.in_(ids))
        .order_by(Subscription.digest)
    )
    for row in session.execute(stmt):
        out.setdefault(row.subscriber_id, []).append(row.digest)
    return out


def _consent_values(consent: Consent) -> dict[str, Any]:
    return {
        "consent_requested_at": consent.requested_at,
        "consent_confirmed_at": consent.confirmed_at,
        "consent_source": consent.source,
        "consent_ip": consent.ip,
    }


def _import_batch(
    session: Session,
    batch: list[_CsvRow],
    digests: list[str] | None,
    now: datetime,
    by_status: dict[str, int],
) -> tuple[int, int, int]:
    if session.get_bind().dialect.name == "postgresql":
        # A table just filled has no statistics yet (autovacuum analyses it later), and the
        # planner then scans it whole for each batch's IN list: 0.8 s a batch at 100,000 rows.
        session.execute(text("SET LOCAL enable_seqscan = off"))
    # Plain rows, not ORM objects: one IN query per batch, nothing tracked by the session.
    existing = {
        row.email_key: row
        for row in session.execute(
            select(
                Subscriber.id,
                Subscriber.email_key,
                Subscriber.name,
                Subscriber.categories,
                Subscriber.status,
                Subscriber.status_serial,
                Subscriber.all_digests,
                Subscriber.consent_requested_at,
                Subscriber.consent_source,
                Subscriber.timezone,
            ).where(Subscriber.email_key.in_([r.key for r in batch]))
        )
    }
    wanted = {r.key: r.wanted(digests) for r in batch}
    chosen: dict[int, list[str]] = {}
    if any(w is not None for w in wanted.values()):
        chosen = _digests_of(session, [row.id for row in existing.values()])
    new: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    redo_digests: dict[int, list[str]] = {}  # subscribers whose subscriptions become these
    new_digests: dict[str, list[str]] = {}  # the same for new rows, by email key
    for r in batch:
        sub = existing.get(r.key)
        want = wanted[r.key]
        if sub is None:
            every = want is None or want[0]
            status = r.status or ACTIVE
            by_status[status] = by_status.get(status, 0) + 1
            new.append(
                {
                    "email": r.email,
                    "email_key": r.key,
                    "name": r.name or "",
                    "categories": r.categories or [],
                    "status": status,
                    "status_reason": "imported",
                    "status_changed_at": now,
                    "created_at": now,
                    "updated_at": now,
                    "all_digests": every,
                    "timezone": r.timezone,
                    **_consent_values(r.consent),
                }
            )
            if want is not None and not every:
                new_digests[r.key] = want[1]
            continue
        change: dict[str, Any] = {}
        if r.name is not None and r.name != sub.name:
            change["name"] = r.name
        if r.categories is not None and r.categories != list(sub.categories or ()):
            change["categories"] = r.categories
        if r.timezone is not None and r.timezone != sub.timezone:
            change["timezone"] = r.timezone
        if r.status in KEPT_STATUSES and sub.status in (ACTIVE, PENDING):
            # They left (or bounced) at the other service: they stay out here too.
            change.update(status=r.status, status_reason="imported", status_changed_at=now)
            change["status_serial"] = (sub.status_serial or 0) + 1
        elif sub.status == PENDING and r.status in (None, ACTIVE):
            # As `add` does; unsubscribed and bounced are never made active by an import.
            change.update(status=ACTIVE, status_reason="imported", status_changed_at=now)
            change["status_serial"] = (sub.status_serial or 0) + 1
        if sub.consent_requested_at is None and r.consent.requested_at is not None:
            change.update(_consent_values(r.consent))
        if want is not None:
            every, names = want
            if every and not sub.all_digests:
                change["all_digests"] = True
                redo_digests[sub.id] = []
            elif not every and (sub.all_digests or chosen.get(sub.id, []) != names):
                change["all_digests"] = False
                redo_digests[sub.id] = names
        if change:
            changes.append({"id": sub.id, "updated_at": now, **change})
    if new:
        session.execute(insert(Subscriber), new)
        if new_digests:
            added = select(Subscriber.id, Subscriber.email_key).where(
                Subscriber.email_key.in_(list(new_digests))
            )
            for sub_id, key in session.execute(added):
                redo_digests[sub_id] = new_digests[key]
    if redo_digests:
        session.execute(
            delete(Subscription).where(Subscription.subscriber_id.in_(list(redo_digests)))
        )
        rows = [{"subscriber_id": i, "digest": d} for i, ds in redo_digests.items() for d in ds]
        if rows:
            session.execute(insert(Subscription), rows)
    # ORM bulk UPDATE by primary key; grouped by the set of keys so each group is one executemany.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(change)), []).append(change)
    for rows_of_group in groups.values():
        session.execute(update(Subscriber), rows_of_group)
    return len(new), len(changes), len(batch) - len(new) - len(changes)


def import_csv(
    store: Store,
    source: str | Path | TextIO,
    *,
    digests: Sequence[str] | None = None,
    known_digests: Collection[str] | None = None,
    now: datetime | None = None,
    service: str = "csv",
    ip_key: Callable[[str], str] | None = None,
) -> ImportReport:
    """Add or update subscribers from a CSV (header `email`, optional `name`, `categories`,
    `digests`, `status` and the consent columns), as export_csv writes it, or from another
    service's export (`service`: see import_formats.SERVICES).

    A new row gets the file's status (as `add` does without one); a row saying unsubscribed or
    bounced takes an active or pending subscriber out; none makes anyone active again. The
    file's sign-up and confirmation times become the consent record (source `import:<service>`
    unless the file names its own); an IP address is kept only as `ip_key` hashes it.

    `digests`: every row is put on exactly these digests. Without it a row's digests cell
    (`weekly;daily`, or `*` for every digest, future ones too) puts it on those; an empty cell
    or no such column: new rows get every digest, existing ones keep theirs. A digest not in
    `known_digests` (the config's, when given) skips the row. Never resubscribes. Bad rows are
    skipped and reported by line; a later row repeating an address is reported too (the first
    one counts). Each batch of rows is its own transaction.
    """
    _label, export = read_export(source, service)
    chosen = clean_digests(digests) if digests is not None else None
    report = ImportReport(unused_columns=export.unused_columns)
    report.skipped.extend(export.problems)
    when = now or utcnow()
    batch: list[_CsvRow] = []

    def flush() -> None:
        for attempt in (1, 2):
            try:
                with store.write_transaction() as session:
                    by_status: dict[str, int] = {}
                    added, updated, unchanged = _import_batch(
                        session, batch, chosen, when, by_status
                    )
                break
            except IntegrityError:
                # PostgreSQL: someone added one of these addresses meanwhile; look again.
                if attempt == 2:
                    raise
        report.added += added
        report.updated += updated
        report.unchanged += unchanged
        for status, count in by_status.items():
            report.added_by_status[status] = report.added_by_status.get(status, 0) + count
        batch.clear()

    source_name = IMPORT_PREFIX + service
    for row in _checked_rows(export.rows, report, known_digests, source_name, ip_key):
        batch.append(row)
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
    report.skipped.sort()
    return report


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """The value, prefixed with ' when a spreadsheet would run it as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when is not None else ""


def export_csv(
    store: Store,
    out: TextIO,
    *,
    status: str | None = None,
    digests: bool = False,
    consent: bool = False,
    timezone: bool = False,
) -> int:
    """Write the subscribers as CSV (email,name,categories,status,created_at); the row count.

    timezone=True adds a timezone column (IANA name, empty for site.timezone) that import_csv
    reads back.

    consent=True adds the consent record (consent_requested_at, consent_confirmed_at,
    consent_source, consent_ip): import_csv reads it back.

    digests=True adds a digests column: `;`-separated, or `*` for every digest (import_csv
    reads it back, so an export re-imported keeps each subscriber's digests).

    Cells a spreadsheet would take for a formula get a leading ' (names come from the web form).
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        EXPORT_HEADER
        + (CONSENT_HEADER if consent else ())
        + ((DIGESTS_COLUMN,) if digests else ())
        + (("timezone",) if timezone else ())
    )
    count = 0
    query = select(
        Subscriber.id,
        Subscriber.email,
        Subscriber.name,
        Subscriber.categories,
        Subscriber.status,
        Subscriber.created_at,
        Subscriber.all_digests,
        Subscriber.consent_requested_at,
        Subscriber.consent_confirmed_at,
        Subscriber.consent_source,
        Subscriber.consent_ip,
        Subscriber.timezone,
    ).order_by(Subscriber.created_at, Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == check_status(status))
    with store.session() as session:
        chosen: dict[int, list[str]] = {}
        for sub_id, digest in session.execute(
            select(Subscription.subscriber_id, Subscription.digest).order_by(
                Subscription.subscriber_id, Subscription.digest
            )
        ):
            chosen.setdefault(sub_id, []).append(digest)
        for row in session.execute(query):
            sub_id, email, name, cats, state, created, every, asked, confirmed, how, ip, zone = row
            on = EVERY_DIGEST if every else ";".join(chosen.get(sub_id, ()))
            cells = [email, name, ";".join(cats or ()), state, created.isoformat()]
            if consent:
                cells += [_iso(asked), _iso(confirmed), how or "", ip or ""]
            if digests:
                cells.append(on)
            if timezone:
                cells.append(zone or "")
            writer.writerow([neutralise_cell(cell) for cell in cells])
            count += 1
    return count
