"""A digest run: pick the new posts, snapshot the recipients into a run, send it, or test it.

posts ─► newposts ─► render ─► message ─► delivery ─► sending ─► smtp; the run and every
outcome lives in store.runs and store.claims, so a run stopped anywhere is finished by `send`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from digest.addresses import normalise_email
from digest.archive import archive_run
from digest.delivery.health import rate_warnings
from digest.delivery.links import apply_check_links
from digest.delivery.sending import (
    NO_RECIPIENTS,
    NOTHING_NEW,
    TOO_FEW_POSTS,
    Progress,
    RunReport,
    RunSender,
)
from digest.delivery.workers import SenderProcesses
from digest.errors import DigestError, InvalidAddressError, SmtpError
from digest.mail.envelope import Envelope
from digest.mail.message import MessageTemplate
from digest.render.renderer import Renderer
from digest.selection.newposts import new_posts, posts_by_id, posts_to_show
from digest.selection.rules import share_of_posts
from digest.settings import Settings
from digest.smtp.client import SmtpSender, helo_name
from digest.smtp.stream import WireMessage, send_one
from digest.sources import describe_source
from digest.sources.post import Post
from digest.store import Store, runs
from digest.store.bounce_events import last_run_outcome
from digest.store.models import utcnow
from digest.tokens import check_secret

log = logging.getLogger(__name__)

# RunReport.status values besides the run statuses (sending, finished).


@dataclass(frozen=True)
class PlannedSegment:
    post_ids: tuple[str, ...]
    recipients: int


@dataclass(frozen=True)
class UnfinishedRun:
    run_id: int
    as_of: datetime
    posts: int
    pending: int


@dataclass(frozen=True)
class Plan:
    """What `send` would do now (--dry-run); nothing was written to make it."""

    digest: str
    as_of: datetime
    unfinished: list[UnfinishedRun]
    posts: list[Post]
    segments: list[PlannedSegment]
    empty_shares: int  # active subscribers whose share of the new posts is empty
    min_posts: int

    @property
    def recipients(self) -> int:
        return sum(s.recipients for s in self.segments)

    @property
    def would_send(self) -> bool:
        return len(self.posts) >= max(self.min_posts, 1) and self.recipients > 0


@dataclass(frozen=True)
class SendTestResult:
    to: str
    subject: str
    message_id: str
    posts: int
    latest: bool  # nothing was new: the latest posts were shown instead
    html_bytes: int = 0  # the HTML part as rendered (before the recipient's name and links)
    shortened: str | None = None  # what the clip guard did, for people; None: nothing


def _require_secret(settings: Settings) -> str:
    return check_secret(settings.web.secret.get_secret_value())


# --- the public calls -------------------------------------------------------------------------


def warn_about_rates(store: Store, name: str) -> None:
    """Before sending more, a warning per rate over its limit: relays suspend accounts over them."""
    with store.session() as session:
        last = last_run_outcome(session, name)
    for warning in rate_warnings(name, last):
        log.warning("%s", warning)


def send_digest(
    settings: Settings,
    store: Store,
    name: str,
    *,
    as_of: datetime,
    trigger: str = "manual",
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    workers: int = 1,
) -> list[RunReport]:
    """Finish the digest's unfinished runs, then send a new run if enough posts are new.

    workers > 1: that many sender processes on this machine share each run (worker_pool).
    """
    digest = settings.digest(name)
    _require_secret(settings)
    warn_about_rates(store, name)
    if digest.deliver == "local_time":
        from digest.delivery.editions import send_editions

        return send_editions(
            settings, store, digest, as_of=as_of, trigger=trigger, progress=progress, stop=stop
        )
    # The other processes first: forked before this one starts a thread (worker_pool).
    others = SenderProcesses(settings, workers) if workers > 1 else None
    reports: list[RunReport] = []
    try:
        sender = RunSender(settings, store, digest, progress=progress, stop=stop, as_of=as_of)
    except BaseException:
        if others is not None:
            others.close()
        raise

    def send(run_id: int, *, resumed: bool) -> RunReport:
        if others is None:
            return sender.send_run(run_id, resumed=resumed)
        others.send(sender, run_id, progress=progress)
        return sender.report(run_id, resumed=resumed)

    try:
        # Another sender may create the run between our look and our insert: then finish theirs.
        for _ in range(3):
            with store.session() as session:
                open_runs = [r.id for r in runs.unfinished_runs(session, name)]
            cutoff = utcnow() - settings.delivery.give_up_after
            for run_id in open_runs:
                given_up = runs.give_up_deferred(store, run_id, started_before=cutoff)
                if given_up:
                    log.warning(
                        "%s: gave up on %d deliveries of run %d still deferred (4xx) after %s",
                        name,
                        given_up,
                        run_id,
                        settings.delivery.give_up_after,
                    )
                archive_run(store, sender.renderer, digest, run_id, sender.posts())
                reports.append(send(run_id, resumed=True))
            # Deliveries still deferred (4xx) stay pending for the next pass, but they do not
            # hold back new posts: the new run's posts are disjoint from theirs.
            if sender.stop.is_set():
                return reports
            # The posts were read once (for the resumed runs, or now); a malformed one is
            # warned about once.
            posts = new_posts(store, digest, sender.posts().values(), as_of)
            # check_links: hold raises (no run), skip leaves the dead posts new.
            posts = apply_check_links(
                settings, digest, posts, as_of=as_of, renderer=sender.renderer
            )
            if len(posts) < max(digest.min_posts, 1):
                status = NOTHING_NEW if not posts else TOO_FEW_POSTS
                reports.append(RunReport(0, name, as_of, len(posts), status=status))
                return reports
            began = time.perf_counter()
            new_run = runs.create_run(
                store,
                name,
                as_of,
                [p.id for p in posts],
                share_of_posts(posts),
                trigger,
                known_unfinished=open_runs,
            )
            if new_run is None:
                continue
            if new_run == 0:
                reports.append(RunReport(0, name, as_of, len(posts), status=NO_RECIPIENTS))
                return reports
            log.info("%s: run %d created in %.3f s", name, new_run, time.perf_counter() - began)
            archive_run(store, sender.renderer, digest, new_run, sender.posts())
            reports.append(send(new_run, resumed=False))
            return reports
        return reports
    finally:
        sender.close()
        if others is not None:
            others.close()


def plan_digest(settings: Settings, store: Store, name: str, *, as_of: datetime) -> Plan:
    """What `send` would do now: runs it would finish, new posts, recipients; writes nothing."""
    digest = settings.digest(name)
    unfinished = []
    with store.session() as session:
        for run in runs.unfinished_runs(session, name):
            counts = runs.run_counts(session, run.id)
            unfinished.append(
                UnfinishedRun(
                    run.id,
                    run.as_of,
                    len(run.post_ids or ()),
                    counts["pending"] + counts["sending"],
                )
            )
    posts = new_posts(
        store, digest, posts_by_id(settings, as_of=as_of, store=store).values(), as_of
    )
    segments: list[PlannedSegment] = []
    empty_shares = 0
    if posts:
        with store.session() as session:
            groups = runs.category_groups(session, name, utcnow())
        by_share = runs.segment_groups(groups, share_of_posts(posts))
        segments = [PlannedSegment(k, sum(g.subscribers for g in v)) for k, v in by_share.items()]
        empty_shares = sum(g.subscribers for g in groups) - sum(s.recipients for s in segments)
    return Plan(name, as_of, unfinished, posts, segments, empty_shares, digest.min_posts)


def send_test(
    settings: Settings, store: Store, name: str, to: str, *, as_of: datetime
) -> SendTestResult:
    """Send the digest as it would go out now to one address, Subject `[TEST] `; records nothing.

    When nothing is new it shows the latest posts instead (newposts.posts_to_show).
    """
    digest = settings.digest(name)
    try:
        address = normalise_email(to)
    except ValueError as exc:
        raise InvalidAddressError(f"--to: {exc}") from None
    by_id = posts_by_id(settings, as_of=as_of, store=store)
    shown = posts_to_show(store, digest, list(by_id.values()), as_of)
    posts = shown.posts
    if not posts:
        raise DigestError(
            f"digest {name!r}: no published posts in its categories to show",
            hint=f"check {describe_source(settings.site)} and the digest's categories",
        )
    renderer = Renderer(settings)
    with store.session() as session:
        since = runs.previous_edition(session, name, as_of)
    rendered = renderer.render_segment(digest, posts, as_of=as_of, since=since, latest=shown.latest)
    template = MessageTemplate(settings, digest, rendered, renderer, subject_prefix="[TEST] ")
    built = template.build(
        to_email=address, to_name="", unsubscribe_url=f"{settings.web.base_url}/unsubscribe/test"
    )
    envelope = Envelope(settings)
    data = envelope.sign(built.data)
    helo = helo_name(settings.email.from_address)
    with SmtpSender(settings.smtp, local_hostname=helo) as sender:
        result = send_one(sender, WireMessage.of(envelope.mail_from(), address, data))
    if result.outcome != "sent":
        raise SmtpError(
            f"smtp {settings.smtp.host}:{settings.smtp.port} refused {address}: "
            f"{result.code} {result.reply}".rstrip()
        )
    return SendTestResult(
        address,
        "[TEST] " + rendered.subject,
        built.message_id,
        len(posts),
        shown.latest,
        html_bytes=len(rendered.html.encode("utf-8")),
        shortened=rendered.shortened.describe() if rendered.shortened else None,
    )
