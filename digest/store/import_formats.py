"""Subscriber exports as each service writes them, read into one kind of row for the import.

cli (`subscribers import FILE --from S`) ─► store.subscriber_csv ─► import_formats (pure: no SQL).
digest's own CSV (`csv`), Mailchimp's audience export (one CSV or the zip of subscribed,
unsubscribed and cleaned members), Substack's subscriber CSV, Ghost's members CSV, Buttondown's
subscriber export and listmonk's subscribers CSV: each column the service documents is read or
named as unused; statuses map to ours (cleaned -> bounced, unsubscribed kept unsubscribed), and
sign-up and confirmation times become the consent record.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from digest.errors import BadInputError
from digest.store.models import ACTIVE, BOUNCED, PENDING, SUBSCRIBER_STATUSES, UNSUBSCRIBED

SERVICES = ("csv", "mailchimp", "substack", "ghost", "buttondown", "listmonk")
CATEGORY_SEPARATORS = re.compile(r"[;,]")
_GO_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d+)? ([+-]\d{4})(?: [A-Za-z]+)?(?: m=[+-][\d.]+)?$"
)
_TRUE = {"true", "yes", "1", "t", "y"}


def split_category_list(cell: str) -> list[str]:
    """Categories from one typed list: separated by `;` or `,` (the sign-up form's rule too);
    spaces inside a name stay (`Machine Learning`)."""
    return [part.strip() for part in CATEGORY_SEPARATORS.split(cell) if part.strip()]


@dataclass
class ImportedRow:
    """One person of an export, as digest keeps them (cells not yet validated)."""

    line: int
    email: str
    name: str | None = None
    categories: list[str] | None = None
    digests: str = ""  # digest's own `digests` cell (`weekly;daily` or `*`)
    status: str | None = None  # one of ours; None: as `add` does
    requested_at: datetime | None = None
    confirmed_at: datetime | None = None
    consent_source: str | None = None  # the file's own record (digest's CSV), else the import's
    ip: str | None = None  # the export's IP address (hashed before it is kept) ...
    ip_hashed: str | None = None  # ... or a keyed hash already (digest's own CSV)
    skip: str | None = None  # why this row is not imported (a status that must not be mailed)
    file: str = ""  # the file inside a zip, named in what is reported about the row
    timezone: str | None = None  # IANA name (deliver: local_time); None: leave as is


@dataclass
class ExportFile:
    """A file read from an export: its rows and the columns no reader uses."""

    rows: list[ImportedRow] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


Record = Mapping[str, str]
Reader = Callable[[Record, int], ImportedRow]


def parse_time(cell: str) -> datetime | None:
    """An export's time: ISO 8601 (`Z` too), Mailchimp's `2024-01-15 10:00:00` (UTC), or Go's
    `2024-01-15 10:00:00.123 +0000 UTC` (listmonk); None when empty. ValueError otherwise."""
    text = cell.strip()
    if not text:
        return None
    go = _GO_TIME.match(text)
    if go:
        fraction = (go.group(2) or "")[:7]
        text = f"{go.group(1)}{fraction}{go.group(3)[:3]}:{go.group(3)[3:]}"
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _flag(cell: str) -> bool:
    return cell.strip().casefold() in _TRUE


def _cell(record: Record, *names: str) -> str:
    for name in names:
        value = record.get(name)
        if value is not None and value.strip():
            return value.strip()
    return ""


def _name(*parts: str) -> str | None:
    joined = " ".join(p.strip() for p in parts if p.strip())
    return joined or None


# --- the readers, one per service ----------------------------------------------------------------

MAILCHIMP_STATUSES = {"subscribed": ACTIVE, "unsubscribed": UNSUBSCRIBED, "cleaned": BOUNCED}
MAILCHIMP_USED = {
    "email address", "first name", "last name", "optin_time", "optin_ip", "confirm_time",
    "confirm_ip", "unsub_time", "clean_time",
}  # fmt: skip


def _mailchimp(kind: str) -> Reader:
    def read(record: Record, line: int) -> ImportedRow:
        return ImportedRow(
            line,
            _cell(record, "email address", "email"),
            name=_name(_cell(record, "first name"), _cell(record, "last name")),
            status=MAILCHIMP_STATUSES[kind],
            requested_at=parse_time(_cell(record, "optin_time")),
            confirmed_at=parse_time(_cell(record, "confirm_time")),
            ip=_cell(record, "optin_ip", "confirm_ip") or None,
        )

    return read


def _mailchimp_kind(name: str, columns: list[str]) -> str:
    """subscribed, unsubscribed or cleaned: from the file's name, else from its columns."""
    lowered = Path(name).name.casefold()
    for kind in ("unsubscribed", "cleaned", "subscribed"):
        if lowered.startswith(kind) or f"_{kind}" in lowered or f"-{kind}" in lowered:
            return kind
    if "clean_time" in columns:
        return "cleaned"
    return "unsubscribed" if "unsub_time" in columns else "subscribed"


def _substack(record: Record, line: int) -> ImportedRow:
    # email_disabled: the reader turned the emails off; they stay on Substack, never mailed.
    disabled = _flag(_cell(record, "email_disabled"))
    return ImportedRow(
        line,
        _cell(record, "email"),
        name=_name(_cell(record, "name")),
        status=UNSUBSCRIBED if disabled else ACTIVE,
        requested_at=parse_time(_cell(record, "created_at", "subscription_date")),
    )


SUBSTACK_USED = {"email", "name", "email_disabled", "created_at", "subscription_date"}


def _ghost(record: Record, line: int) -> ImportedRow:
    subscribed = _cell(record, "subscribed_to_emails").casefold()
    deleted = _cell(record, "deleted_at")
    return ImportedRow(
        line,
        _cell(record, "email"),
        name=_name(_cell(record, "name")),
        status=UNSUBSCRIBED if deleted or subscribed in ("false", "0", "no") else ACTIVE,
        requested_at=parse_time(_cell(record, "created_at")),
    )


GHOST_USED = {"email", "name", "subscribed_to_emails", "created_at", "deleted_at"}

# Buttondown's subscriber types (its API's SubscriberType): who may be mailed, who not.
BUTTONDOWN_STATUSES = {
    "regular": ACTIVE, "premium": ACTIVE, "trialed": ACTIVE, "unpaid": ACTIVE, "gifted": ACTIVE,
    "churning": ACTIVE, "paused": ACTIVE, "past_due": ACTIVE, "unactivated": PENDING,
    "unsubscribed": UNSUBSCRIBED, "removed": UNSUBSCRIBED, "spammy": UNSUBSCRIBED,
    "complained": UNSUBSCRIBED, "blocked": UNSUBSCRIBED, "undeliverable": BOUNCED,
}  # fmt: skip


def _buttondown(record: Record, line: int) -> ImportedRow:
    kind = _cell(record, "subscriber_type", "type").casefold() or "regular"
    out = ImportedRow(
        line,
        _cell(record, "email", "email_address"),
        status=BUTTONDOWN_STATUSES.get(kind),
        requested_at=parse_time(_cell(record, "creation_date", "created_date", "date")),
    )
    if out.status is None:
        out.skip = f"unknown Buttondown subscriber type {kind!r}: not imported"
    metadata = _cell(record, "metadata")
    if metadata:
        try:
            data = json.loads(metadata)
        except ValueError:
            data = {}
        if isinstance(data, dict):
            out.name = _name(str(data.get("name") or ""))
    return out


BUTTONDOWN_USED = {
    "email", "email_address", "subscriber_type", "type", "creation_date", "created_date", "date",
    "metadata",
}  # fmt: skip

LISTMONK_STATUSES = {"enabled": ACTIVE, "disabled": UNSUBSCRIBED, "blocklisted": UNSUBSCRIBED}


def _listmonk(record: Record, line: int) -> ImportedRow:
    state = _cell(record, "status").casefold() or "enabled"
    out = ImportedRow(
        line,
        _cell(record, "email"),
        name=_name(_cell(record, "name")),
        status=LISTMONK_STATUSES.get(state),
        requested_at=parse_time(_cell(record, "created_at")),
    )
    if out.status is None:
        out.skip = f"unknown listmonk status {state!r}: not imported"
    return out


LISTMONK_USED = {"email", "name", "status", "created_at"}


def _own_csv(record: Record, line: int) -> ImportedRow:
    cats = _cell(record, "categories")
    status = _cell(record, "status").casefold()
    out = ImportedRow(
        line,
        record.get("email", ""),
        name=_name(_cell(record, "name")),
        categories=split_category_list(cats) if cats else None,
        digests=_cell(record, "digests"),
        status=status or None,
        requested_at=parse_time(_cell(record, "consent_requested_at")),
        confirmed_at=parse_time(_cell(record, "consent_confirmed_at")),
        consent_source=_cell(record, "consent_source") or None,
        ip_hashed=_cell(record, "consent_ip") or None,
        timezone=_cell(record, "timezone") or None,
    )
    if status and status not in SUBSCRIBER_STATUSES:
        out.skip = f"unknown status {status!r} (one of {', '.join(SUBSCRIBER_STATUSES)})"
    return out


# created_at is when the row was made here: an import makes it anew. timezone: see subscribers.
CSV_USED = {
    "email", "name", "categories", "digests", "status", "created_at", "timezone",
    "consent_requested_at", "consent_confirmed_at", "consent_source", "consent_ip",
}  # fmt: skip

# The columns each reader uses: any other column of the file is reported once, as not used.
_USED: dict[str, set[str]] = {
    "csv": CSV_USED,
    "mailchimp": MAILCHIMP_USED,
    "substack": SUBSTACK_USED,
    "ghost": GHOST_USED,
    "buttondown": BUTTONDOWN_USED,
    "listmonk": LISTMONK_USED,
}
_READERS: dict[str, Reader] = {
    "csv": _own_csv,
    "substack": _substack,
    "ghost": _ghost,
    "buttondown": _buttondown,
    "listmonk": _listmonk,
}
_EMAIL_COLUMNS = {"email", "email address", "email_address"}


def _rows(
    label: str, text: str, service: str, out: ExportFile, *, file: str = ""
) -> Iterator[ImportedRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise BadInputError(f"{label}: not a CSV file: {exc}") from None
    columns = [h.strip().casefold() for h in header or ()]
    if not _EMAIL_COLUMNS & set(columns):
        hint = (
            "the first row names the columns: email[,name][,categories][,digests]"
            if service == "csv"
            else f"is this {service}'s subscriber export? (--from names the service)"
        )
        wanted = "'email'" if service == "csv" else "email"
        raise BadInputError(f"{label}: no {wanted} column in the header row", hint=hint)
    used = _USED[service]
    for column in columns:
        if column and column not in used and column not in out.unused_columns:
            out.unused_columns.append(column)
    read = _mailchimp(_mailchimp_kind(label, columns)) if service == "mailchimp" else None
    read = read or _READERS[service]
    while True:
        line = reader.line_num + 1
        where = f"{file}: " if file else ""
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            out.problems.append((line, f"{where}unreadable CSV: {exc}"))
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        record = dict(zip(columns, cells, strict=False))
        try:
            row = read(record, line)
        except ValueError as exc:
            out.problems.append((line, f"{where}unreadable time: {exc}"))
            continue
        row.file = file
        yield row


def _decode(label: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInputError(
            f"{label}: not UTF-8 text (line {line}, byte {exc.start})",
            hint="save the file as UTF-8 CSV",
        ) from None


def read_export(source: str | Path | TextIO, service: str = "csv") -> tuple[str, ExportFile]:
    """(label, rows) of an export file ("-" or a stream: stdin); BadInputError when the file
    cannot be read at all. Bad rows are in `problems`, by line."""
    if service not in SERVICES:
        raise BadInputError(f"unknown export format {service!r} (one of {', '.join(SERVICES)})")
    out = ExportFile()
    if not isinstance(source, (str, Path)):
        label = str(getattr(source, "name", "<stream>"))
        try:
            text = source.read().removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise BadInputError(
                f"{label}: not UTF-8 text", hint="save the file as UTF-8 CSV"
            ) from None
        out.rows = list(_rows(label, text, service, out))
        return label, out
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if data.startswith(b"PK\x03\x04"):
        if service != "mailchimp":
            raise BadInputError(f"{path}: a zip file; only --from mailchimp reads a zip")
        return str(path), _read_zip(path, data, out)
    out.rows = list(_rows(str(path), _decode(str(path), data), service, out))
    return str(path), out


def _read_zip(path: Path, data: bytes, out: ExportFile) -> ExportFile:
    """Mailchimp's audience export zip: every CSV in it (subscribed, unsubscribed, cleaned)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = sorted(n for n in archive.namelist() if n.casefold().endswith(".csv"))
        if not names:
            raise BadInputError(f"{path}: no CSV file in the zip")
        for name in names:
            text = _decode(f"{path}:{name}", archive.read(name))
            out.rows.extend(_rows(f"{path}:{name}", text, "mailchimp", out, file=Path(name).name))
    except zipfile.BadZipFile as exc:
        raise BadInputError(f"{path}: not a readable zip file: {exc}") from None
    return out
