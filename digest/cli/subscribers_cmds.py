"""`digest subscribers ...`: the doors onto digest.store.subscribers.

Each command opens the store (creating the schema on first use), makes one call, prints the result.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from digest.cli.app import State, echo_json, pass_state
from digest.errors import BadInputError
from digest.store import Store, open_store
from digest.store.import_formats import SERVICES
from digest.store.models import ACTIVE, BOUNCED, SUBSCRIBER_STATUSES, UNSUBSCRIBED
from digest.store.subscriber_csv import export_csv, import_csv
from digest.store.subscribers import (
    KEPT_STATUSES,
    SubscriberRow,
    add_subscriber,
    list_subscribers,
    remove_subscriber,
    unsubscribe,
)
from digest.tokens import MIN_SECRET_LENGTH, ip_hash

REASON_WIDTH = 70  # characters of the reason a table shows (json has it whole)


def _store(state: State) -> Store:
    return open_store(state.settings.database.url)


@click.group()
def subscribers() -> None:
    """Add, remove, list, import and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", metavar="N", help="Display name (used in the greeting and To: header).")
@click.option(
    "--category",
    "categories",
    metavar="C",
    multiple=True,
    help="Only posts in this category (repeatable); replaces the subscriber's list.",
)
@click.option(
    "--all-categories",
    is_flag=True,
    help="Clear the subscriber's categories: every post of the digest.",
)
@click.option(
    "--digest",
    "digests",
    metavar="D",
    multiple=True,
    help="Only this digest (repeatable); replaces the subscriber's list. Default: every digest.",
)
@click.option(
    "--all-digests",
    is_flag=True,
    help="Put the subscriber back on every digest, present and future.",
)
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Make an unsubscribed or bounced address active again.",
)
@click.option(
    "--timezone",
    metavar="TZ",
    help='IANA time zone for deliver: local_time (e.g. Asia/Tokyo; "" = site.timezone).',
)
@pass_state
def add_cmd(
    state: State,
    email: str,
    name: str | None,
    categories: tuple[str, ...],
    all_categories: bool,
    digests: tuple[str, ...],
    all_digests: bool,
    resubscribe: bool,
    timezone: str | None,
) -> None:
    """Add an active subscriber, or update the given fields of an existing one."""
    if all_categories and categories:
        raise click.UsageError("--category and --all-categories exclude each other")
    if all_digests and digests:
        raise click.UsageError("--digest and --all-digests exclude each other")
    cats: list[str] | None = [] if all_categories else list(categories) if categories else None
    chosen = _chosen_digests(state, digests)
    with _store(state) as store:
        row, created = add_subscriber(
            store,
            email,
            name=name,
            categories=cats,
            digests=chosen,
            all_digests=all_digests,
            resubscribe=resubscribe,
            timezone=timezone,
        )
    if created:
        click.echo(f"added {row.email} ({row.status})")
    elif row.status in KEPT_STATUSES and not resubscribe:
        click.echo(f"updated {row.email}; status stays {row.status}")
        click.echo("hint: add --resubscribe to mail them again", err=True)
    else:
        click.echo(f"updated {row.email} ({row.status})")


def _chosen_digests(state: State, digests: tuple[str, ...]) -> list[str] | None:
    """The --digest names, each checked against the config (exit 2 naming an unknown one)."""
    for name in digests:
        state.settings.digest(name)
    return list(digests) if digests else None


@subscribers.command("remove")
@click.argument("email")
@pass_state
def remove_cmd(state: State, email: str) -> None:
    """Erase a subscriber and their personal data."""
    with _store(state) as store:
        row = remove_subscriber(store, email)
    click.echo(f"removed {row.email} and their personal data")


@subscribers.command("unsubscribe")
@click.argument("email")
@pass_state
def unsubscribe_cmd(state: State, email: str) -> None:
    """Mark a subscriber unsubscribed (kept, never mailed)."""
    with _store(state) as store:
        row = unsubscribe(store, email, reason="cli")
    click.echo(f"unsubscribed {row.email}")


def _why(row: SubscriberRow) -> tuple[str, str]:
    """When and why a subscriber left (bounced, complained, unsubscribed); blank otherwise."""
    if row.status not in (BOUNCED, UNSUBSCRIBED) or row.status_changed_at is None:
        return "", ""
    reason = row.status_reason or ""
    if len(reason) > REASON_WIDTH:
        reason = reason[: REASON_WIDTH - 1] + "…"
    return row.status_changed_at.strftime("%Y-%m-%d %H:%M"), reason


def _table(rows: list[SubscriberRow]) -> None:
    header = (
        "EMAIL",
        "NAME",
        "STATUS",
        "DIGESTS",
        "CATEGORIES",
        "CREATED (UTC)",
        "SINCE (UTC)",
        "WHY",
    )
    lines = [
        (
            r.email,
            r.name,
            r.status,
            ", ".join(r.digests) if not r.all_digests else "(all)",
            ", ".join(r.categories) or "(all)",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            *_why(r),
        )
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in col) for col in zip(header, *lines, strict=False)]
    for line in (header, *lines):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    click.echo(f"{len(rows)} subscriber{'' if len(rows) == 1 else 's'}")


@subscribers.command("list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "csv", "json")),
    default="table",
    show_default=True,
    help="A table to read, CSV (as export writes it) or JSON for scripts.",
)
@click.option(
    "--with-digests", is_flag=True, help="CSV: add a digests column (as export --with-digests)."
)
@click.option(
    "--with-consent", is_flag=True, help="CSV: add the consent columns (as export --with-consent)."
)
@click.option(
    "--with-timezone", is_flag=True, help="CSV: add a timezone column (as export --with-timezone)."
)
@pass_state
def list_cmd(
    state: State,
    status: str | None,
    fmt: str,
    with_digests: bool,
    with_consent: bool,
    with_timezone: bool,
) -> None:
    """List subscribers, oldest first."""
    with _store(state) as store:
        if fmt == "csv":
            export_csv(
                store,
                sys.stdout,
                status=status,
                digests=with_digests,
                consent=with_consent,
                timezone=with_timezone,
            )
            return
        rows = list_subscribers(store, status)
    if fmt == "json":
        every_digest = list(state.settings.digests)
        echo_json([r.as_dict(every_digest) for r in rows])
    elif rows:
        _table(rows)
    else:
        click.echo("no subscribers" + (f" with status {status}" if status else ""))


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--from",
    "service",
    type=click.Choice(SERVICES),
    default="csv",
    show_default=True,
    help="Whose export FILE is: digest's own CSV, or Mailchimp's audience export (a CSV of it "
    "or the zip), Substack's, Ghost's, Buttondown's or listmonk's subscriber CSV.",
)
@click.option(
    "--digest",
    "digests",
    metavar="D",
    multiple=True,
    help="Put every row on this digest (repeatable). Default: the file's digests column, "
    "else new rows get every digest.",
)
@pass_state
def import_cmd(state: State, file: str, service: str, digests: tuple[str, ...]) -> None:
    """Add or update subscribers from a CSV file ("-" for stdin) or another service's export.

    digest's CSV: the header row names the columns: email (required), name, categories
    (separated by ; or , as on the sign-up form), digests (;-separated, * for every digest),
    status and the consent columns, as export writes them. Other services: their export as
    they write it; unsubscribed people stay unsubscribed, cleaned (bounced) ones bounced, and
    sign-up and confirmation times become the consent record. Never resubscribes anyone.
    Bad rows are reported on stderr by line and skipped, columns digest does not use are named
    once; the others are imported and the exit status is 0.
    """
    chosen = _chosen_digests(state, digests)
    secret = state.settings.web.secret.get_secret_value()
    keyed = len(secret) >= MIN_SECRET_LENGTH
    with _store(state) as store:
        source = sys.stdin if file == "-" else Path(file)
        report = import_csv(
            store,
            source,
            digests=chosen,
            known_digests=list(state.settings.digests),
            service=service,
            ip_key=(lambda address: ip_hash(secret, address)) if keyed else None,
        )
    for line, reason in report.skipped:
        click.echo(f"line {line}: {reason}", err=True)
    if report.unused_columns:
        click.echo(f"columns not used: {', '.join(report.unused_columns)}", err=True)
    by_status = report.added_by_status
    # Said when not everyone added is active (another service's unsubscribed, cleaned...).
    statuses = ", ".join(f"{by_status[s]} {s}" for s in SUBSCRIBER_STATUSES if s in by_status)
    if set(by_status) <= {ACTIVE}:
        statuses = ""
    click.echo(
        f"imported: {report.added} added{f' ({statuses})' if statuses else ''}, "
        f"{report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped"
    )


@subscribers.command("export")
@click.option("--out", metavar="FILE", help="Write to FILE instead of stdout.")
@click.option(
    "--with-digests",
    is_flag=True,
    help="Add a digests column (;-separated, * for every digest) that import reads back.",
)
@click.option(
    "--with-consent",
    is_flag=True,
    help="Add each subscriber's consent record (consent_requested_at, consent_confirmed_at, "
    "consent_source, consent_ip) that import reads back.",
)
@click.option(
    "--with-timezone",
    is_flag=True,
    help="Add a timezone column (IANA name; empty: site.timezone) that import reads back.",
)
@pass_state
def export_cmd(
    state: State, out: str | None, with_digests: bool, with_consent: bool, with_timezone: bool
) -> None:
    """Write every subscriber as CSV (to stdout, or to --out FILE).

    Columns: email,name,categories (;-separated),status,created_at (ISO 8601, UTC), and with
    --with-digests a digests column; import reads it back.
    """
    with _store(state) as store:
        if out is None:
            export_csv(
                store,
                sys.stdout,
                digests=with_digests,
                consent=with_consent,
                timezone=with_timezone,
            )
            return
        target = Path(out)
        # Written beside the target and renamed: a failed export leaves no half-written file.
        # mkstemp makes it 0600, which suits a file of personal data.
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        except OSError as exc:
            raise BadInputError(f"{target}: cannot write: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                count = export_csv(
                    store,
                    handle,
                    digests=with_digests,
                    consent=with_consent,
                    timezone=with_timezone,
                )
            os.replace(tmp, target)
        except OSError as exc:
            raise BadInputError(f"{target}: cannot write: {exc.strerror or exc}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    click.echo(f"exported {count} subscribers to {target}")
