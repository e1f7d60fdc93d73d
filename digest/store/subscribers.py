"""The subscriber list: add, update, unsubscribe, erase, list, CSV import and export.

store is the only home of SQL: the cli, web and delivery call these; addresses are checked here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from digest.addresses import clean_name, email_key, normalise_email
from digest.errors import BadInputError, InvalidAddressError, NotFoundError
from digest.store import Store
from digest.store.models import (
    ACTIVE,
    BOUNCED,
    D_PENDING,
    D_SENDING,
    PENDING,
    SUBSCRIBER_STATUSES,
    UNSUBSCRIBED,
    Delivery,
    Subscriber,
    utcnow,
)

# Statuses that are the subscriber's (or their mailbox's) choice: only --resubscribe undoes them.
KEPT_STATUSES = (UNSUBSCRIBED, BOUNCED)
IMPORT_BATCH = 1000
EXPORT_HEADER = ("email", "name", "categories", "status", "created_at")


@dataclass(frozen=True)
class SubscriberRow:
    """A subscriber as the doors see it (a detached snapshot, no session needed)."""

    id: int
    email: str
    name: str
    categories: tuple[str, ...]
    status: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: categories as a list, times as ISO 8601 with offset."""
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "categories": list(self.categories),
            "status": self.status,
            "status_reason": self.status_reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass
class ImportReport:
    """What an import did; `skipped` holds (line number, reason) for each row left out."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def row_of(sub: Subscriber) -> SubscriberRow:
    """The plain, frozen view of a Subscriber row that callers outside store get."""
    return SubscriberRow(
        id=sub.id,
        email=sub.email,
        name=sub.name,
        categories=tuple(sub.categories or ()),
        status=sub.status,
        status_reason=sub.status_reason,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
    )


def _email(address: str) -> str:
    try:
        return normalise_email(address)
    except ValueError as exc:
        raise InvalidAddressError(str(exc)) from None


def _name(name: str | None, address: str) -> str:
    try:
        return clean_name(name)
    except ValueError as exc:
        raise InvalidAddressError(f"{exc} (subscriber {address})") from None


def clean_categories(categories: Iterable[str]) -> list[str]:
    """Strip, drop empties, drop case-insensitive repeats (the first spelling wins)."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in categories:
        category = raw.strip()
        if not category:
            continue
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in category):
            raise BadInputError(f"category {category!r} contains a control character")
        if category.casefold() not in seen:
            seen.add(category.casefold())
            out.append(category)
    return out


def _check_status(status: str) -> str:
    if status not in SUBSCRIBER_STATUSES:
        raise BadInputError(
            f"unknown subscriber status {status!r} (one of {', '.join(SUBSCRIBER_STATUSES)})"
        )
    return status


def _lookup_key(email: str) -> str:
    """The email_key of an address as typed (normalised when it is valid)."""
    try:
        return email_key(normalise_email(email))
    except ValueError:
        return email_key(email.strip())


def _get(session: Session, email: str) -> Subscriber | None:
    return session.scalars(
        select(Subscriber).where(Subscriber.email_key == _lookup_key(email))
    ).one_or_none()


def _apply(
    sub: Subscriber,
    *,
    name: str | None,
    categories: list[str] | None,
    status: str,
    resubscribe: bool,
    now: datetime,
) -> None:
    """Update an existing subscriber with the fields given, as `add` promises."""
    before = (sub.name, list(sub.categories or ()))
    if name is not None and sub.name != name:
        sub.name = name
    if categories is not None and list(sub.categories or ()) != categories:
        sub.categories = categories
    changed = False
    if sub.status in KEPT_STATUSES:
        if resubscribe:
            sub.status, sub.status_reason, sub.status_changed_at = status, "resubscribed", now
            changed = True
    elif sub.status == PENDING and status == ACTIVE:
        # An explicit add activates a web sign-up that has not confirmed yet.
        sub.status, sub.status_reason, sub.status_changed_at = ACTIVE, "added", now
        changed = True
    if changed or sub.name != before[0] or list(sub.categories or ()) != before[1]:
        _touch(sub, now)


def _touch(sub: Subscriber, now: datetime) -> None:
    sub.updated_at = now
    # Even when equal to the old value: else the column's onupdate=utcnow would replace it.
    flag_modified(sub, "updated_at")


def new_subscriber(
    address: str,
    *,
    name: str | None,
    categories: list[str] | None,
    status: str,
    reason: str,
    now: datetime,
) -> Subscriber:
    """A new Subscriber row (not yet added to a session) for an already-validated address."""
    return Subscriber(
        email=address,
        email_key=email_key(address),
        name=name or "",
        categories=categories or [],
        status=status,
        status_reason=reason,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
    )


def add_subscriber(
    store: Store,
    email: str,
    *,
    name: str | None = None,
    categories: Sequence[str] | None = None,
    resubscribe: bool = False,
    status: str = ACTIVE,
    now: datetime | None = None,
) -> tuple[SubscriberRow, bool]:
    """Add a subscriber, or update the fields given of an existing one; (row, created).

    An unsubscribed or bounced address keeps its status unless resubscribe=True.
    """
    address = _email(email)
    clean = _name(name, address) if name is not None else None
    cats = clean_categories(categories) if categories is not None else None
    _check_status(status)
    when = now or utcnow()
    for attempt in (1, 2):
        try:
            with store.write_transaction() as session:
                sub = _get(session, address)
                if sub is not None:
                    _apply(
                        sub,
                        name=clean,
                        categories=cats,
                        status=status,
                        resubscribe=resubscribe,
                        now=when,
                    )
                    session.flush()
                    return row_of(sub), False
                sub = new_subscriber(
                    address, name=clean, categories=cats, status=status, reason="added", now=when
                )
                session.add(sub)
                session.flush()
                return row_of(sub), True
        except IntegrityError:
            # Another process added the same address between our look-up and insert (PostgreSQL).
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def find_subscriber(store: Store, email: str) -> SubscriberRow | None:
    """The subscriber with this address (case-insensitive), or None."""
    with store.session() as session:
        sub = _get(session, email)
        return row_of(sub) if sub is not None else None


def _require(session: Session, email: str) -> Subscriber:
    sub = _get(session, email)
    if sub is None:
        raise NotFoundError(f"no subscriber {email.strip()!r}")
    return sub


def remove_subscriber(store: Store, email: str) -> SubscriberRow:
    """Erase a subscriber and their personal data; deliveries already made stay, anonymous."""
    with store.write_transaction() as session:
        sub = _require(session, email)
        row = row_of(sub)
        # Explicit, not left to ON DELETE: SQLite only honours it with PRAGMA foreign_keys.
        session.execute(
            delete(Delivery).where(
                Delivery.subscriber_id == sub.id, Delivery.status.in_((D_PENDING, D_SENDING))
            )
        )
        # An SMTP reply can quote the address: it goes with the link.
        session.execute(
            update(Delivery)
            .where(Delivery.subscriber_id == sub.id)
            .values(subscriber_id=None, last_reply=None)
        )
        session.execute(delete(Subscriber).where(Subscriber.id == sub.id))
    return row


def _set_status(sub: Subscriber, status: str, reason: str | None, now: datetime) -> None:
    if sub.status != status:
        sub.status, sub.status_changed_at = status, now
        sub.status_reason = reason
        _touch(sub, now)


def unsubscribe(
    store: Store, email: str, *, reason: str = "cli", now: datetime | None = None
) -> SubscriberRow:
    """Mark a subscriber unsubscribed (kept, never mailed); a no-op when they already are."""
    with store.write_transaction() as session:
        sub = _require(session, email)
        _set_status(sub, UNSUBSCRIBED, reason, now or utcnow())
        session.flush()
        return row_of(sub)


def set_status(
    store: Store,
    subscriber_id: int,
    status: str,
    reason: str | None,
    *,
    now: datetime | None = None,
) -> SubscriberRow:
    """Set a subscriber's status by id (bounces from delivery, confirmations from the web)."""
    _check_status(status)
    with store.write_transaction() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            raise NotFoundError(f"no subscriber with id {subscriber_id}")
        _set_status(sub, status, reason, now or utcnow())
        session.flush()
        return row_of(sub)


def list_subscribers(store: Store, status: str | None = None) -> list[SubscriberRow]:
    """Every subscriber (or those with one status), oldest first."""
    query = select(Subscriber).order_by(Subscriber.created_at, Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == _check_status(status))
    with store.session() as session:
        return [row_of(sub) for sub in session.scalars(query)]


def active_subscribers(session: Session) -> list[tuple[int, str, str, list[str]]]:
    """(id, email, name, categories) of every active subscriber, for a run's snapshot."""
    rows = session.execute(
        select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.categories)
        .where(Subscriber.status == ACTIVE)
        .order_by(Subscriber.id)
    )
    return [(id_, email, name, list(cats or ())) for id_, email, name, cats in rows]


# --- CSV -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CsvRow:
    line: int
    email: str
    key: str
    name: str | None  # None: the cell was empty or the column absent (field not given)
    categories: list[str] | None


def _read_text(source: str | Path | TextIO) -> tuple[str, str]:
    """(label, whole text): read at once so a bad encoding stops the import before any write."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            return str(path), data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise BadInputError(
                f"{path}: not UTF-8 text (line {line}, byte {exc.start})",
                hint="save the file as UTF-8 CSV",
            ) from None
    label = str(getattr(source, "name", "<stream>"))
    try:
        return label, source.read().removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise BadInputError(f"{label}: not UTF-8 text", hint="save the file as UTF-8 CSV") from None


def _parse_csv(label: str, text: str, report: ImportReport) -> Iterable[_CsvRow]:
    """Valid rows, in file order; invalid ones go to report.skipped with their line number."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise BadInputError(f"{label}: not a CSV file: {exc}") from None
    columns = [h.strip().casefold() for h in header or ()]
    if "email" not in columns:
        raise BadInputError(
            f"{label}: no 'email' column in the header row",
            hint="the first row names the columns: email[,name][,categories]",
        )
    i_email = columns.index("email")
    i_name = columns.index("name") if "name" in columns else None
    i_cats = columns.index("categories") if "categories" in columns else None
    first_line: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.skipped.append((line, f"unreadable CSV: {exc}"))
            continue
        # A quoted cell may span lines: the row starts where the previous one ended.
        if not cells or all(not c.strip() for c in cells):
            continue
        raw = cells[i_email] if i_email < len(cells) else ""
        if not raw.strip():
            report.skipped.append((line, "no email address"))
            continue
        try:
            address = normalise_email(raw)
            name_cell = cells[i_name] if i_name is not None and i_name < len(cells) else ""
            name = clean_name(name_cell) if name_cell.strip() else None
            cats_cell = cells[i_cats] if i_cats is not None and i_cats < len(cells) else ""
            cats = clean_categories(cats_cell.split(";")) if cats_cell.strip() else None
        except (ValueError, BadInputError) as exc:
            report.skipped.append((line, str(exc)))
            continue
        key = email_key(address)
        if key in first_line:
            report.skipped.append((line, f"{address}: duplicate of line {first_line[key]}"))
            continue
        first_line[key] = line
        yield _CsvRow(line, address, key, name, cats)


def _import_batch(session: Session, batch: list[_CsvRow], now: datetime) -> tuple[int, int, int]:
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
            ).where(Subscriber.email_key.in_([r.key for r in batch]))
        )
    }
    new: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for r in batch:
        sub = existing.get(r.key)
        if sub is None:
            new.append(
                {
                    "email": r.email,
                    "email_key": r.key,
                    "name": r.name or "",
                    "categories": r.categories or [],
                    "status": ACTIVE,
                    "status_reason": "imported",
                    "status_changed_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        change: dict[str, Any] = {}
        if r.name is not None and r.name != sub.name:
            change["name"] = r.name
        if r.categories is not None and r.categories != list(sub.categories or ()):
            change["categories"] = r.categories
        if sub.status == PENDING:  # as `add` does; unsubscribed and bounced are never touched
            change.update(status=ACTIVE, status_reason="imported", status_changed_at=now)
        if change:
            changes.append({"id": sub.id, "updated_at": now, **change})
    if new:
        session.execute(insert(Subscriber), new)
    # ORM bulk UPDATE by primary key; grouped by the set of keys so each group is one executemany.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(change)), []).append(change)
    for rows in groups.values():
        session.execute(update(Subscriber), rows)
    return len(new), len(changes), len(batch) - len(new) - len(changes)


def import_csv(
    store: Store, source: str | Path | TextIO, *, now: datetime | None = None
) -> ImportReport:
    """Add or update subscribers from a CSV (header `email`, optional `name`, `categories`).

    Never resubscribes. Bad rows are skipped and reported by line; a later row repeating an
    address is reported too (the first one counts). Each batch of rows is its own transaction.
    """
    label, text = _read_text(source)
    report = ImportReport()
    when = now or utcnow()
    batch: list[_CsvRow] = []

    def flush() -> None:
        for attempt in (1, 2):
            try:
                with store.write_transaction() as session:
                    added, updated, unchanged = _import_batch(session, batch, when)
                break
            except IntegrityError:
                # PostgreSQL: someone added one of these addresses meanwhile; look again.
                if attempt == 2:
                    raise
        report.added += added
        report.updated += updated
        report.unchanged += unchanged
        batch.clear()

    for row in _parse_csv(label, text, report):
        batch.append(row)
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
    report.skipped.sort()
    return report


def export_csv(store: Store, out: TextIO, *, status: str | None = None) -> int:
    """Write the subscribers as CSV (email,name,categories,status,created_at); the row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    count = 0
    query = select(
        Subscriber.email,
        Subscriber.name,
        Subscriber.categories,
        Subscriber.status,
        Subscriber.created_at,
    ).order_by(Subscriber.created_at, Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == _check_status(status))
    with store.session() as session:
        for email, name, cats, status, created in session.execute(query):
            writer.writerow((email, name, ";".join(cats or ()), status, created.isoformat()))
            count += 1
    return count
