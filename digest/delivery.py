"""A digest run: pick the new posts, snapshot recipients, then claim, send, record and retry.

posts ─► selection ─► render ─► message ─► delivery ─► smtp; every outcome is committed to
store.claims as it happens, so a run stopped anywhere is finished by the next `send`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from digest.addresses import normalise_email, parse_from_address
from digest.errors import DigestError, InvalidAddressError, SmtpConnectError, SmtpError
from digest.store import Store, claims, runs, workers
from digest.store.models import utcnow
from digest.tokens import check_secret, unsubscribe_url

if TYPE_CHECKING:
    from digest.config import DigestSettings, Settings
    from digest.message import MessageTemplate
    from digest.posts import Post
    from digest.render import Renderer
    from digest.smtp import RateLimiter

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# Deliveries claimed at once by one connection's thread. Only the one being sent can be in
# flight at a crash (outbox tells it from the rest), so a bigger batch costs no duplicates.
CLAIM_BATCH = 32
# Connection failures in a row (over all threads) after which a pass gives up.
CONNECTION_FAILURES_TO_GIVE_UP = 3
TAKE_OVER_EVERY = 5.0  # seconds between looks for a dead sender's deliveries while busy
MAX_WAIT = 1.0  # seconds between looks at a run while waiting for retries or other senders

# RunReport.status values besides the run statuses (sending, finished).
NOTHING_NEW = "nothing-new"
TOO_FEW_POSTS = "too-few-posts"
NO_RECIPIENTS = "no-recipients"


@dataclass
class RunReport:
    """What one run (or the decision not to start one) came to."""

    run_id: int  # 0 when no run was started
    digest: str
    as_of: datetime
    posts: int
    sent: int = 0
    failed: int = 0
    pending: int = 0
    skipped: int = 0
    resent: int = 0  # in flight at a crash, sent again (they may arrive twice)
    status: str = NOTHING_NEW
    resumed: bool = False
    vanished_posts: list[str] = field(default_factory=list)


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


def _require_secret(settings: Settings) -> str:
    return check_secret(settings.web.secret.get_secret_value())


def _posts_by_id(settings: Settings) -> dict[str, Post]:
    from digest.posts import load_posts

    loaded = load_posts(settings.site)
    for problem in loaded.problems:
        log.warning("skipping post %s", problem)
    return {p.id: p for p in loaded.posts}


def _new_posts(
    settings: Settings,
    store: Store,
    digest: DigestSettings,
    as_of: datetime,
    by_id: dict[str, Post] | None = None,
) -> tuple[list[Post], dict[str, Post]]:
    from digest.selection import select_new

    if by_id is None:
        by_id = _posts_by_id(settings)
    posts = sorted(by_id.values(), key=lambda p: p.date, reverse=True)
    with store.session() as session:
        sent = runs.sent_post_ids(session, digest.name)
    return select_new(posts, digest, as_of, sent), by_id


def _recipients(
    store: Store, posts: Sequence[Post]
) -> tuple[dict[tuple[str, ...], list[int]], int]:
    """Segments of the active subscribers (post ids -> subscriber ids), and empty shares."""
    from digest.selection import group_segments
    from digest.store.subscribers import active_subscribers

    with store.session() as session:
        subscribers = active_subscribers(session)
    groups = group_segments(posts, [(s[0], s[3]) for s in subscribers])
    empty = len(subscribers) - sum(len(v) for v in groups.values())
    return groups, empty


# --- sending a run ----------------------------------------------------------------------------


@dataclass
class _Pass:
    """Shared state of the threads sending one run in this process."""

    run_id: int
    templates: dict[int, MessageTemplate]
    total: int
    done: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    abort: threading.Event = field(default_factory=threading.Event)
    given_up: set[int] = field(default_factory=set)  # transient too often in this pass
    uncertain: set[int] = field(default_factory=set)  # handed to the server, outcome unrecorded
    tries: dict[int, int] = field(default_factory=dict)
    resent: int = 0
    any_sent: bool = False
    connection_failures: int = 0
    error: BaseException | None = None


class _Sender:
    """One process's sending machinery for a digest: worker row, heartbeat, rate limit."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        digest: DigestSettings,
        *,
        progress: Progress | None,
        stop: threading.Event | None,
    ) -> None:
        from digest.render import Renderer
        from digest.smtp import RateLimiter

        self.settings = settings
        self.store = store
        self.digest = digest
        self.progress = progress
        self.stop = stop or threading.Event()
        self.from_addr = parse_from_address(settings.email.from_)[1]
        self.renderer: Renderer = Renderer(settings)
        rate = settings.smtp.rate_limit
        self.limiter: RateLimiter | None = RateLimiter(rate) if rate > 0 else None
        self.worker_id = workers.register_worker(store, "sender")
        self._beating = threading.Event()
        self._heart = threading.Thread(target=self._beat, name="digest-heartbeat", daemon=True)
        self._heart.start()
        self._posts: dict[str, Post] | None = None

    def _beat(self) -> None:
        while not self._beating.wait(workers.HEARTBEAT_EVERY):
            try:
                workers.heartbeat(self.store, self.worker_id)
            except DigestError as exc:  # the database blinked; the next beat may work
                log.warning("heartbeat failed: %s", exc)

    def close(self) -> None:
        self._beating.set()
        self._heart.join()
        try:
            workers.unregister_worker(self.store, self.worker_id)
        except DigestError as exc:  # keep the error that brought us here; the row goes stale
            log.warning("could not remove worker %s: %s", self.worker_id, exc)

    def posts(self) -> dict[str, Post]:
        if self._posts is None:
            self._posts = _posts_by_id(self.settings)
        return self._posts

    def _templates(
        self, run_as_of: datetime, segments: Sequence[tuple[int, list[str]]], report: RunReport
    ) -> dict[int, MessageTemplate]:
        """Render each segment once, from its posts as they are on disk now."""
        from digest.message import MessageTemplate

        by_id = self.posts()
        templates: dict[int, MessageTemplate] = {}
        for segment_id, post_ids in segments:
            posts = [by_id[p] for p in post_ids if p in by_id]
            missing = [p for p in post_ids if p not in by_id]
            for p in missing:
                if p not in report.vanished_posts:
                    report.vanished_posts.append(p)
                    log.warning("post %s of run %s is gone; sending without it", p, report.run_id)
            if not posts:
                claims.skip_segment(self.store, segment_id, "its posts are gone")
                continue
            rendered = self.renderer.render_segment(self.digest, posts, as_of=run_as_of)
            templates[segment_id] = MessageTemplate(
                self.settings, self.digest, rendered, self.renderer
            )
        return templates

    def send_run(self, run_id: int, *, resumed: bool) -> RunReport:
        """Send every open delivery of a run; returns its report (pending > 0 if left open)."""
        with self.store.session() as session:
            run = runs.get_run(session, run_id)
            assert run is not None
            run_as_of, n_posts = run.as_of, len(run.post_ids or ())
            segments = runs.run_segments(session, run_id)
            counts = runs.run_counts(session, run_id)
        report = RunReport(
            run_id=run_id,
            digest=self.digest.name,
            as_of=run_as_of,
            posts=n_posts,
            resumed=resumed,
            status="sending",
        )
        open_rows = counts["pending"] + counts["sending"]
        if open_rows:
            state = _Pass(
                run_id=run_id,
                templates=self._templates(run_as_of, segments, report),
                total=sum(counts.values()),
                done=sum(counts.values()) - open_rows,
            )
            threads = [
                threading.Thread(
                    target=self._thread, args=(state,), name=f"digest-send-{i}", daemon=True
                )
                for i in range(min(self.settings.smtp.max_connections, open_rows))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            claims.release_claims(self.store, run_id, self.worker_id, keep=state.uncertain)
            report.resent = state.resent
            if state.error is not None:
                self._raise(state.error, run_id)
        finished = runs.finish_run_if_done(self.store, run_id)
        with self.store.session() as session:
            counts = runs.run_counts(session, run_id)
        report.sent, report.failed, report.skipped = (
            counts["sent"],
            counts["failed"],
            counts["skipped"],
        )
        report.pending = counts["pending"] + counts["sending"]
        report.status = "finished" if finished else "sending"
        if self.progress is not None:
            self.progress(sum(counts.values()) - report.pending, sum(counts.values()))
        return report

    def _raise(self, error: BaseException, run_id: int) -> None:
        if isinstance(error, SmtpConnectError):
            with self.store.session() as session:
                counts = runs.run_counts(session, run_id)
            left = counts["pending"] + counts["sending"]
            raise SmtpConnectError(
                f"{error.message}; {left} deliveries of run {run_id} left pending",
                hint=f"the next `digest send {self.digest.name}` continues where this one stopped",
            ) from error
        raise error

    def _thread(self, state: _Pass) -> None:
        from digest.smtp import SmtpSender, helo_name

        recorder = claims.Recorder(self.store)
        try:
            with SmtpSender(
                self.settings.smtp, limiter=self.limiter, local_hostname=helo_name(self.from_addr)
            ) as sender:
                self._loop(state, sender, recorder)
        except BaseException as exc:  # kept and re-raised by send_run after the join
            with state.lock:
                if state.error is None:
                    state.error = exc
            state.abort.set()
        finally:
            recorder.close()

    def _loop(self, state: _Pass, sender: object, recorder: claims.Recorder) -> None:
        from digest.smtp import SmtpSender

        assert isinstance(sender, SmtpSender)
        store, run_id, worker = self.store, state.run_id, self.worker_id
        backoff = self.settings.delivery.retry_backoff
        max_attempts = self.settings.delivery.max_attempts
        digest_name = self.digest.name
        looked = 0.0  # when this thread last looked for dead senders' deliveries
        while not (self.stop.is_set() or state.abort.is_set()):
            with state.lock:
                exclude = set(state.given_up)
            take_over = time.monotonic() - looked > TAKE_OVER_EVERY
            if take_over:
                looked = time.monotonic()
            batch = claims.claim(
                store, run_id, worker, CLAIM_BATCH, exclude=exclude, take_over=take_over
            )
            if not batch:
                looked = 0.0  # nothing left to claim: look at once, next time
                with store.session() as session:
                    look = claims.outlook(session, run_id, worker, exclude)
                if look.waiting == 0 and look.others_sending == 0:
                    return
                delay = MAX_WAIT / 5
                if look.waiting and look.next_due is not None:
                    delay = (look.next_due - utcnow()).total_seconds()
                self.stop.wait(min(max(delay, 0.01), MAX_WAIT))
                continue
            with state.lock:
                state.resent += sum(1 for c in batch if c.reclaimed)
            for i, item in enumerate(batch):
                if self.stop.is_set() or state.abort.is_set():
                    claims.release_claims(store, run_id, worker, [c.delivery_id for c in batch[i:]])
                    return
                template = state.templates.get(item.segment_id)
                if template is None:  # its posts are gone (skip_segment raced this claim)
                    claims.skip_segment(store, item.segment_id, "its posts are gone")
                    continue
                built = template.build(
                    to_email=item.email,
                    to_name=item.name,
                    unsubscribe_url=unsubscribe_url(self.settings, item.subscriber_id, digest_name),
                    categories=item.categories,
                )
                with state.lock:
                    state.uncertain.add(item.delivery_id)
                try:
                    result = sender.send(self.from_addr, item.email, built.data)
                except SmtpConnectError as exc:
                    with state.lock:
                        state.uncertain.discard(item.delivery_id)
                    rest = [c.delivery_id for c in batch[i:]]
                    with state.lock:
                        first = not state.any_sent
                        state.connection_failures += 1
                        give_up = (
                            first or state.connection_failures >= CONNECTION_FAILURES_TO_GIVE_UP
                        )
                        if give_up and state.error is None:
                            state.error = exc
                    if first:  # never reached the server: leave everything as it was
                        claims.release_claims(store, run_id, worker, rest)
                        state.abort.set()
                        return
                    claims.mark_transient(store, item.delivery_id, f"connection: {exc}", backoff)
                    self._count_try(state, item.delivery_id, max_attempts, final=False)
                    claims.release_claims(store, run_id, worker, rest[1:])
                    if give_up:
                        state.abort.set()
                        return
                    self.stop.wait(min(backoff, MAX_WAIT))
                    break
                reply = f"{result.code} {result.reply}".strip()
                if result.outcome == "sent":
                    recorder.mark_sent(item.delivery_id, built.message_id, reply)
                elif result.outcome == "permanent":
                    claims.mark_failed(store, item.delivery_id, item.subscriber_id, reply)
                else:
                    claims.mark_transient(store, item.delivery_id, reply, backoff)
                final = result.outcome != "transient"
                self._count_try(state, item.delivery_id, max_attempts, final=final, answered=True)

    def _count_try(
        self,
        state: _Pass,
        delivery_id: int,
        max_attempts: int,
        *,
        final: bool,
        answered: bool = False,
    ) -> None:
        """Count one recorded try: progress, retries left in this pass, the server's health."""
        with state.lock:
            state.uncertain.discard(delivery_id)
            if answered:  # the server answered: it is up
                state.any_sent = True
                state.connection_failures = 0
            if final:
                state.done += 1
                done, total = state.done, state.total
            else:
                tries = state.tries.get(delivery_id, 0) + 1
                state.tries[delivery_id] = tries
                if tries >= max_attempts:
                    state.given_up.add(delivery_id)
                return
        if self.progress is not None:
            self.progress(done, total)


# --- the public calls -------------------------------------------------------------------------


def send_digest(
    settings: Settings,
    store: Store,
    name: str,
    *,
    as_of: datetime,
    trigger: str = "manual",
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> list[RunReport]:
    """Finish the digest's unfinished runs, then send a new run if enough posts are new."""
    digest = settings.digest(name)
    _require_secret(settings)
    reports: list[RunReport] = []
    sender = _Sender(settings, store, digest, progress=progress, stop=stop)
    try:
        # Another sender may create the run between our look and our insert: then finish theirs.
        for _ in range(3):
            with store.session() as session:
                open_runs = [r.id for r in runs.unfinished_runs(session, name)]
            cutoff = utcnow() - settings.delivery.give_up_after
            for run_id in open_runs:
                given_up = claims.give_up_deferred(store, run_id, started_before=cutoff)
                if given_up:
                    log.warning(
                        "%s: gave up on %d deliveries of run %d still deferred (4xx) after %s",
                        name,
                        given_up,
                        run_id,
                        settings.delivery.give_up_after,
                    )
                reports.append(sender.send_run(run_id, resumed=True))
            # Deliveries still deferred (4xx) stay pending for the next pass, but they do not
            # hold back new posts: the new run's posts are disjoint from theirs.
            if sender.stop.is_set():
                return reports
            # The posts were read once (for the resumed runs, or now); a malformed one is
            # warned about once.
            posts, _ = _new_posts(settings, store, digest, as_of, sender.posts())
            if len(posts) < max(digest.min_posts, 1):
                status = NOTHING_NEW if not posts else TOO_FEW_POSTS
                reports.append(RunReport(0, name, as_of, len(posts), status=status))
                return reports
            groups, _empty = _recipients(store, posts)
            if not groups:
                reports.append(RunReport(0, name, as_of, len(posts), status=NO_RECIPIENTS))
                return reports
            new_run = runs.create_run(
                store,
                name,
                as_of,
                [p.id for p in posts],
                list(groups.items()),
                trigger,
                known_unfinished=open_runs,
            )
            if new_run is None:
                continue
            reports.append(sender.send_run(new_run, resumed=False))
            return reports
        return reports
    finally:
        sender.close()


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
    posts, _ = _new_posts(settings, store, digest, as_of)
    groups, empty = _recipients(store, posts) if posts else ({}, 0)
    segments = [PlannedSegment(k, len(v)) for k, v in groups.items()]
    return Plan(name, as_of, unfinished, posts, segments, empty, digest.min_posts)


TEST_POSTS_LIMIT = 5


def send_test(
    settings: Settings, store: Store, name: str, to: str, *, as_of: datetime
) -> SendTestResult:
    """Send the digest as it would go out now to one address, Subject `[TEST] `; records nothing."""
    from digest.message import MessageTemplate
    from digest.selection import latest_posts
    from digest.smtp import SmtpSender, helo_name

    digest = settings.digest(name)
    try:
        address = normalise_email(to)
    except ValueError as exc:
        raise InvalidAddressError(f"--to: {exc}") from None
    posts, by_id = _new_posts(settings, store, digest, as_of)
    latest = not posts
    if latest:
        every = sorted(by_id.values(), key=lambda p: p.date, reverse=True)
        posts = latest_posts(every, digest, as_of, max(digest.min_posts, TEST_POSTS_LIMIT))
    if not posts:
        raise DigestError(
            f"digest {name!r}: no published posts in its categories to show",
            hint=f"check site.posts_dir ({settings.site.posts_dir}) and the digest's categories",
        )
    renderer = _renderer(settings)
    rendered = renderer.render_segment(digest, posts, as_of=as_of)
    template = MessageTemplate(settings, digest, rendered, renderer, subject_prefix="[TEST] ")
    built = template.build(
        to_email=address, to_name="", unsubscribe_url=f"{settings.web.base_url}/unsubscribe/test"
    )
    from_addr = parse_from_address(settings.email.from_)[1]
    with SmtpSender(settings.smtp, local_hostname=helo_name(from_addr)) as sender:
        result = sender.send(from_addr, address, built.data)
    if result.outcome != "sent":
        raise SmtpError(
            f"smtp {settings.smtp.host}:{settings.smtp.port} refused {address}: "
            f"{result.code} {result.reply}".rstrip()
        )
    return SendTestResult(
        address, "[TEST] " + rendered.subject, built.message_id, len(posts), latest
    )


def _renderer(settings: Settings) -> Renderer:
    from digest.render import Renderer

    return Renderer(settings)
