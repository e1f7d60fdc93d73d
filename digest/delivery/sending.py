"""The threads of one process that push a run out, one per SMTP connection (send_loop).

delivery (what a run is) ─► sending ─► send_loop ─► message, smtp_stream; every outcome is
committed to store.claims as it happens, so a run stopped anywhere is finished by `send`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from digest.archive import view_in_browser_url
from digest.delivery.connection import (
    JOURNAL_WINDOW,
    ConnectionContext,
    ConnectionLoop,
    Progress,
    SendPass,
)
from digest.delivery.limits import QuotaReached, RelayLimits
from digest.errors import DigestError, SmtpConnectError
from digest.mail.envelope import Envelope
from digest.mail.message import MessageTemplate, feedback_id
from digest.render.renderer import Renderer
from digest.selection.newposts import posts_by_id
from digest.settings import DigestSettings, Settings
from digest.settings.durations import format_duration
from digest.smtp.client import SmtpSender, helo_name
from digest.sources.post import Post
from digest.store import Store, claims, runs, workers
from digest.store.journal import Journal

log = logging.getLogger(__name__)

__all__ = ["Progress", "RunReport", "RunSender"]


# Why a send started no run (RunReport.status when run_id is 0).
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
    resent: int = 0  # may have gone out twice, over every process that worked on the run
    status: str = "sending"  # a run's status, or why none was started (delivery.NOTHING_NEW...)
    resumed: bool = False
    vanished_posts: list[str] = field(default_factory=list)


def destinations_full(held_until: dict[str, datetime]) -> QuotaReached:
    """The pass left deliveries whose destinations' per-hour or per-day limits are used up."""
    resume_at = min(held_until.values())
    parts = ", ".join(
        f"{destination} until {until:%Y-%m-%d %H:%M} UTC"
        for destination, until in sorted(held_until.items())
    )
    return QuotaReached(f"smtp.destination_limits used up: {parts}", resume_at=resume_at)


class RunSender:
    """One process's sending machinery for a digest: worker row, heartbeat, rate limit."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        digest: DigestSettings,
        *,
        progress: Progress | None,
        stop: threading.Event | None,
        as_of: datetime | None = None,
        posts: dict[str, Post] | None = None,
    ) -> None:
        self.settings = settings
        self.as_of = as_of
        self.store = store
        self.digest = digest
        self.progress = progress
        self.stop = stop or threading.Event()
        self.from_addr = settings.email.from_address
        # VERP MAIL FROM and DKIM; the key is read here, once per send.
        self.envelope = Envelope(settings)
        self.renderer = Renderer(settings)
        # The relay's rates (shared with every other sender through the store) and this
        # process's slowdown when it throttles.
        # digests.X.relay (else the first), then the others: failing over goes down this list;
        # each send starts again at its head (back to the primary once it answers).
        self.chain = settings.relay_chain(digest)
        self.relay = self.chain[0]
        self.limits = RelayLimits(store, self.relay, self.relay.max_connections)
        # mark_window 1: each thread journals what the relay accepts (store.journal) and the
        # database catches up a JOURNAL_WINDOW at a time; a taker that cannot read the journal
        # (another machine) counts that window.
        self.journaled = settings.delivery.mark_window == 1
        window = JOURNAL_WINDOW if self.journaled else settings.delivery.mark_window
        self.worker_id = workers.register_worker(store, "sender", mark_window=window)
        self._journals = itertools.count(1)
        self._beating = threading.Event()
        self._heart = threading.Thread(target=self._beat, name="digest-heartbeat", daemon=True)
        self._heart.start()
        self._posts = posts  # read on first use, unless given (another sender read them)

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
        """The site's posts, read once per sender (a malformed one is warned about once)."""
        if self._posts is None:
            self._posts = posts_by_id(self.settings, as_of=self.as_of, store=self.store)
        return self._posts

    def _templates(
        self, run_as_of: datetime, segments: list[runs.RunSegment], report: RunReport
    ) -> dict[int, MessageTemplate]:
        """Render each segment once, from its posts as they are on disk now."""
        by_id = self.posts()
        view_url = view_in_browser_url(self.settings, self.digest.name, report.run_id)
        # "since" in the greeting: the previous edition, not the start of the lookback.
        with self.store.session() as session:
            since = runs.previous_edition(session, self.digest.name, run_as_of)
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
            rendered = self.renderer.render_segment(
                self.digest, posts, as_of=run_as_of, view_url=view_url, since=since
            )
            templates[segment_id] = MessageTemplate(
                self.settings,
                self.digest,
                rendered,
                self.renderer,
                feedback_id=feedback_id(self.settings, self.digest, report.run_id),
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
            templates = self._templates(run_as_of, segments, report)
            state = SendPass(
                run_id=run_id,
                templates=templates,
                total=sum(counts.values()),
                done=sum(counts.values()) - open_rows,
            )
            state.ends_at = self._pass_ends_at()
            self._run_threads(state, min(self.relay.max_connections, open_rows))
            claims.release_claims(self.store, run_id, self.worker_id, keep=state.uncertain)
            while self._fail_over(state) or self._fail_back(state):
                state = SendPass(
                    run_id,
                    templates,
                    state.total,
                    state.done,
                    held=state.held,
                    held_until=state.held_until,
                )
                state.ends_at = self._pass_ends_at()
                self._run_threads(state, min(self.relay.max_connections, open_rows))
                claims.release_claims(self.store, run_id, self.worker_id, keep=state.uncertain)
            if state.error is None and state.held_until and not self.stop.is_set():
                state.error = destinations_full(state.held_until)
            if state.error is not None:
                self._raise(state.error, run_id)
        return self.report(run_id, resumed=resumed, vanished=report.vanished_posts)

    def _fail_over(self, state: SendPass) -> bool:
        """The relay is down, refusing, or throttled longer than its smtp.failover_after: go on
        through the next relay of the chain (each message still goes once: the claims say)."""
        error = state.error
        if not isinstance(error, SmtpConnectError) or self.stop.is_set():
            return False
        names = [r.name for r in self.chain]
        position = names.index(self.relay.name)
        if position + 1 >= len(self.chain):
            return False
        failed, self.relay = self.relay, self.chain[position + 1]
        self.limits = RelayLimits(self.store, self.relay, self.relay.max_connections)
        log.warning(
            "relay %s: %s; going on through relay %s", failed.name, error.message, self.relay.name
        )
        return True

    def _pass_ends_at(self) -> float | None:
        """When a pass through a later relay gives way to the first again (failback_after)."""
        first = self.chain[0]
        if self.relay is first or first.failback_after is None:
            return None
        return time.monotonic() + first.failback_after.total_seconds()

    def _fail_back(self, state: SendPass) -> bool:
        """A pass through a later relay ran for the first relay's smtp.failback_after: try the
        first again with what is left (if it is still down, _fail_over moves on at once)."""
        if state.error is not None or self.stop.is_set() or not state.over():
            return False
        with self.store.session() as session:
            counts = runs.run_counts(session, state.run_id)
        if counts["pending"] + counts["sending"] == 0:
            return False
        first = self.chain[0]
        assert first.failback_after is not None  # state.over() needs ends_at
        log.warning(
            "relay %s: trying relay %s again after smtp.failback_after (%s)",
            self.relay.name,
            first.name,
            format_duration(first.failback_after),
        )
        self.relay = first
        self.limits = RelayLimits(self.store, self.relay, self.relay.max_connections)
        return True

    def report(self, run_id: int, *, resumed: bool, vanished: list[str] | None = None) -> RunReport:
        """The run as it stands now (finished if nothing is left), as this process reports it."""
        finished = runs.finish_run_if_done(self.store, run_id)
        with self.store.session() as session:
            run = runs.get_run(session, run_id)
            assert run is not None
            counts = runs.run_counts(session, run_id)
            report = RunReport(
                run_id=run_id,
                digest=self.digest.name,
                as_of=run.as_of,
                posts=len(run.post_ids or ()),
                resumed=resumed,
                resent=run.possible_resends,
                vanished_posts=list(vanished or ()),
            )
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

    def _run_threads(self, state: SendPass, count: int) -> None:
        threads = [
            threading.Thread(
                target=self._thread, args=(state, i), name=f"digest-send-{i}", daemon=True
            )
            for i in range(count)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _raise(self, error: BaseException, run_id: int) -> None:
        if isinstance(error, QuotaReached):
            with self.store.session() as session:
                counts = runs.run_counts(session, run_id)
            left = counts["pending"] + counts["sending"]
            raise QuotaReached(
                f"{error.message}; {left} deliveries of run {run_id} left pending until then",
                resume_at=error.resume_at,
                hint=f"`digest schedule` (or `digest send {self.digest.name}` then) resumes it",
            ) from error
        if isinstance(error, SmtpConnectError):
            with self.store.session() as session:
                counts = runs.run_counts(session, run_id)
            left = counts["pending"] + counts["sending"]
            raise SmtpConnectError(
                f"{error.message}; {left} deliveries of run {run_id} left pending",
                hint=f"the next `digest send {self.digest.name}` continues where this one stopped",
            ) from error
        raise error

    def connection_context(self) -> ConnectionContext:
        """What each of this process's connection loops works with."""
        return ConnectionContext(
            store=self.store,
            worker_id=self.worker_id,
            digest=self.digest.name,
            settings=self.settings,
            delivery=self.settings.delivery,
            relay=self.relay,
            envelope=self.envelope,
            stop=self.stop,
            progress=self.progress,
            limits=self.limits,
            fail_over=self.relay is not self.chain[-1],
        )

    def _thread(self, state: SendPass, index: int) -> None:
        recorder = claims.Recorder(
            self.store,
            self.digest.name,
            durable=self.settings.database.durable_marks,
            relay=self.relay.name,
        )
        journal = None
        if self.journaled:
            journal = Journal.open(self.store.url, self.worker_id, next(self._journals))
        try:
            with SmtpSender(self.relay, local_hostname=helo_name(self.from_addr)) as smtp:
                context = self.connection_context()
                loop = ConnectionLoop(context, state, smtp, recorder, journal, index=index)
                loop.run()
                journal = loop.journal  # None if it could not be written
        except BaseException as exc:  # kept and re-raised by send_run after the join
            with state.lock:
                if state.error is None:
                    state.error = exc
            state.abort.set()
        finally:
            recorder.close()
            if journal is not None:
                journal.close()  # removed when the database holds all of it
