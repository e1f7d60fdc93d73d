"""`digest send`, `digest send-test` and `digest history`: thin doors onto delivery and runs.

cli ─► delivery.send_digest / plan_digest / send_test, store.runs.history.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import click

from digest.cli.app import (
    State,
    as_of_option,
    echo_json,
    parse_as_of,
    pass_state,
    table_or_json_option,
)
from digest.delivery.run import (
    Plan,
    plan_digest,
    send_digest,
    send_test,
    warn_about_rates,
)
from digest.delivery.sending import NOTHING_NEW, TOO_FEW_POSTS, RunReport
from digest.errors import EXIT_FAILED
from digest.store import Store, open_store
from digest.store.runs import history

PROGRESS_MIN = 50  # deliveries: fewer than this go by without a progress bar
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _store(state: State) -> Store:
    return open_store(state.settings.database.url)


def _when(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Bar:
    """A click progress bar on a TTY for big runs; called from the sending threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bar: Any = None
        self.shown = 0
        self.enabled = sys.stderr.isatty()
        self.label = "sending"

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= PROGRESS_MIN:
            return
        with self.lock:
            if self.bar is None or self.bar.length != total:
                self.close()
                self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
                self.bar.__enter__()
                self.shown = 0
            if done > self.shown:
                self.bar.update(done - self.shown)
                self.shown = done

    def note(self, text: str) -> None:
        """The relay, the rate now and any throttling, shown before the bar."""
        with self.lock:
            self.label = f"sending via {text}"
            if self.bar is not None:
                self.bar.label = self.label

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def _stop_on_signal(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM: finish the messages on the wire, record them, leave the rest pending
    (the next `send` goes on from there); a second one aborts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals go to the main thread only
        return

    def stopping(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        # os.write: a signal handler must not take the lock sys.stderr may be holding.
        os.write(2, b"stopping after the messages on the wire (again to abort)\n")

    previous = {signum: signal.signal(signum, stopping) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _summary(report: RunReport, tz: ZoneInfo) -> list[str]:
    name, when = report.digest, _when(report.as_of, tz)
    if not report.run_id:
        posts = _plural(report.posts, "new post")
        if report.status == NOTHING_NEW:
            return [f"{name}: no new posts as of {when}; nothing sent"]
        if report.status == TOO_FEW_POSTS:
            return [
                f"{name}: {posts} as of {when}, fewer than min_posts: "
                "nothing sent, the posts stay new"
            ]
        return [
            f"{name}: {posts} as of {when} but no active subscriber's categories match: "
            "nothing sent, the posts stay new"
        ]
    # A resumed run with messages left (stopped by Ctrl-C, or retries due later) is still
    # sending: it is never called finished.
    verb = "finished run" if report.resumed and not report.pending else "run"
    failed = f"{report.failed} failed (bounced)" if report.failed else "0 failed"
    line = (
        f"{name}: {verb} {report.run_id} as of {when}: {_plural(report.posts, 'post')}, "
        f"{report.sent} sent, {failed}, {report.pending} pending"
    )
    if report.skipped:
        line += f", {report.skipped} skipped (unsubscribed meanwhile)"
    lines = [line]
    if report.vanished_posts:
        lines.append(
            f"{_plural(len(report.vanished_posts), 'post')} of run {report.run_id} "
            f"no longer exist and were left out: {', '.join(report.vanished_posts)}"
        )
    if report.resent:
        one = report.resent == 1
        lines.append(
            f"{report.resent} {'delivery was' if one else 'deliveries were'} in flight when a "
            f"previous sender stopped and {'was' if one else 'were'} sent again "
            f"({'it' if one else 'they'} may arrive twice; counted over every sender of the "
            "run, with messages that got no answer after the final dot)"
        )
    if report.pending:
        lines.append(
            f"{report.pending} deliveries of run {report.run_id} are still pending: "
            f"run `digest send {name}` again to retry them"
        )
    return lines


def _print_plan(plan: Plan, tz: ZoneInfo) -> None:
    when = _when(plan.as_of, tz)
    click.echo(f"{plan.digest}: dry run as of {when}; nothing is sent or recorded")
    for run in plan.unfinished:
        click.echo(
            f"would finish run {run.run_id} (as of {_when(run.as_of, tz)}): "
            f"{run.pending} deliveries pending"
        )
    if plan.unfinished:
        click.echo("new posts are looked at after the unfinished runs are finished")
    click.echo(f"{_plural(len(plan.posts), 'new post')}:")
    for post in plan.posts:
        cats = ", ".join(post.categories) or "-"
        click.echo(f"  {_when(post.date, tz)}  {post.title}  [{cats}]")
    if len(plan.posts) < max(plan.min_posts, 1):
        click.echo(f"fewer than min_posts ({plan.min_posts}): nothing would be sent")
        return
    for i, seg in enumerate(plan.segments, 1):
        click.echo(
            f"segment {i}: {_plural(len(seg.post_ids), 'post')} to "
            f"{_plural(seg.recipients, 'subscriber')}"
        )
    click.echo(
        f"would send {_plural(plan.recipients, 'message')}; "
        f"{_plural(plan.empty_shares, 'active subscriber')} "
        f"{'has' if plan.empty_shares == 1 else 'have'} no new posts in their categories"
    )


@click.command("send")
@click.argument("name", required=False)
@as_of_option
@click.option("--dry-run", is_flag=True, help="Show what would be sent; change nothing.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Sender processes on this machine sharing the run.",
)
@pass_state
@click.pass_context
def send_cmd(
    ctx: click.Context,
    state: State,
    name: str | None,
    as_of: str | None,
    dry_run: bool,
    workers: int,
) -> None:
    """Send the digest NAME to every active subscriber with new posts.

    Any unfinished run of NAME is finished first. Without NAME it lists the digests.
    """
    settings = state.settings
    if name is None:
        known = ", ".join(settings.digests) or "none in the config"
        raise click.UsageError(f"which digest? give its NAME (digests: {known})")
    tz = settings.site.tz
    when = parse_as_of(as_of, tz)
    with _store(state) as store:
        if dry_run:
            plan = plan_digest(settings, store, name, as_of=when)
            warn_about_rates(store, name)
            _print_plan(plan, tz)
            return
        bar = _Bar()
        stop = threading.Event()
        try:
            with _stop_on_signal(stop):
                reports = send_digest(
                    settings,
                    store,
                    name,
                    as_of=when,
                    progress=bar if bar.enabled else None,  # counting a big run costs
                    stop=stop,
                    workers=workers,
                )
        finally:
            bar.close()
    for report in reports:
        for line in _summary(report, tz):
            click.echo(line)
    if any(r.pending for r in reports):
        ctx.exit(EXIT_FAILED)


@click.command("send-test")
@click.argument("name")
@click.option("--to", "to", required=True, metavar="EMAIL", help="The one address to send to.")
@as_of_option
@pass_state
def send_test_cmd(state: State, name: str, to: str, as_of: str | None) -> None:
    """Send NAME as it would go out now to one address (Subject "[TEST] ..."); records nothing."""
    settings = state.settings
    when = parse_as_of(as_of, settings.site.tz)
    with _store(state) as store:
        result = send_test(settings, store, name, to, as_of=when)
    what = "latest posts (nothing is new)" if result.latest else "new posts"
    click.echo(
        f"{name}: test sent to {result.to}: {_plural(result.posts, 'post')} ({what}), "
        f"subject {result.subject!r}"
    )
    click.echo(f"html part: {result.html_bytes:,} bytes")
    if result.shortened:
        click.echo(result.shortened)


@click.command("history")
@click.argument("name", required=False)
@table_or_json_option
@pass_state
def history_cmd(state: State, name: str | None, fmt: str) -> None:
    """Past runs, newest first."""
    settings = state.settings
    if name is not None:
        settings.digest(name)
    with _store(state) as store, store.session() as session:
        runs = history(session, name)
    if fmt == "json":
        echo_json([r.as_dict() for r in runs])
        return
    if not runs:
        click.echo("no runs yet")
        return
    tz = settings.site.tz
    header = (
        "id",
        "digest",
        "as_of",
        "started_at",
        "finished_at",
        "status",
        "posts",
        "sent",
        "failed",
        "pending",
        "skipped",
        "bounced_later",
        "complaints",
        "resends",
        "relays",
    )
    rows = [
        (
            str(r.id),
            r.digest,
            _when(r.as_of, tz),
            _when(r.started_at, tz),
            _when(r.finished_at, tz) if r.finished_at else "-",
            r.status,
            str(r.posts),
            str(r.sent),
            str(r.failed),
            str(r.pending),
            str(r.skipped),
            str(r.bounced_later),
            str(r.complaints),
            str(r.possible_resends),
            ",".join(f"{name}:{n}" for name, n in sorted(r.relays.items())) or "-",
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
