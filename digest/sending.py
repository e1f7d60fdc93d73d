"""The threads that push a run out: claim a batch, build each message, send it, record it.

delivery (what a run is) ─► sending ─► message, smtp; every outcome is committed to
store.claims as it happens, so a run stopped anywhere is finished by the next `send`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from digest.archive import view_in_browser_url
from digest.config import DigestSettings, Settings
from digest.envelope import Envelope
from digest.errors import DigestError, SmtpConnectError
from digest.message import BuiltMessage, MessageTemplate
from digest.newposts import posts_by_id
from digest.posts import Post
from digest.render import Renderer
from digest.smtp import RateLimiter, SendResult, SmtpSender, helo_name
from digest.store import Store, claims, runs, workers
from digest.store.models import utcnow
from digest.tokens import preferences_url, unsubscribe_url

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# Deliveries claimed at once by one connection's thread. Only the one being sent can be in
# flight at a crash (store.workers tells it from the rest), so a bigger batch costs no duplicates.
CLAIM_BATCH = 32
# Connection failures in a row (over all threads) after which a pass gives up.
CONNECTION_FAILURES_TO_GIVE_UP = 3
TAKE_OVER_EVERY = 5.0  # seconds between looks for a dead sender's deliveries while busy
MAX_WAIT = 1.0  # seconds between looks at a run while waiting for retries or other senders


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
    status: str = "sending"  # a run's status, or why none was started (delivery.NOTHING_NEW...)
    resumed: bool = False
    vanished_posts: list[str] = field(default_factory=list)


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
                self.digest, posts, as_of=run_as_of, view_url=view_url
            )
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
            self._run_threads(state, min(self.settings.smtp.max_connections, open_rows))
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

    def _run_threads(self, state: _Pass, count: int) -> None:
        threads = [
            threading.Thread(
                target=self._thread, args=(state,), name=f"digest-send-{i}", daemon=True
            )
            for i in range(count)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

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
        recorder = claims.Recorder(self.store)
        try:
            with SmtpSender(
                self.settings.smtp, limiter=self.limiter, local_hostname=helo_name(self.from_addr)
            ) as smtp:
                _Connection(self, state, smtp, recorder).run()
        except BaseException as exc:  # kept and re-raised by send_run after the join
            with state.lock:
                if state.error is None:
                    state.error = exc
            state.abort.set()
        finally:
            recorder.close()


class _Connection:
    """One SMTP connection's thread of a pass: claim a batch, send each, record each outcome."""

    def __init__(
        self, sender: RunSender, state: _Pass, smtp: SmtpSender, recorder: claims.Recorder
    ) -> None:
        self.sender = sender
        self.state = state
        self.smtp = smtp
        self.recorder = recorder
        self.store = sender.store
        self.worker_id = sender.worker_id
        self.backoff = sender.settings.delivery.retry_backoff
        self.max_attempts = sender.settings.delivery.max_attempts
        self.looked = 0.0  # when this thread last looked for dead senders' deliveries

    def run(self) -> None:
        while not self._stopping():
            with self.state.lock:
                exclude = set(self.state.given_up)
            batch = self._claim(exclude)
            if not batch:
                if not self._wait_for_more(exclude):
                    return
                continue
            if not self._send_batch(batch):
                return

    def _stopping(self) -> bool:
        return self.sender.stop.is_set() or self.state.abort.is_set()

    def _release(self, batch: list[claims.Claim]) -> None:
        ids = [c.delivery_id for c in batch]
        claims.release_claims(self.store, self.state.run_id, self.worker_id, ids)

    def _claim(self, exclude: set[int]) -> list[claims.Claim]:
        """The next batch of due deliveries, now and then taking over a dead sender's."""
        take_over = time.monotonic() - self.looked > TAKE_OVER_EVERY
        if take_over:
            self.looked = time.monotonic()
        batch = claims.claim(
            self.store,
            self.state.run_id,
            self.worker_id,
            CLAIM_BATCH,
            exclude=exclude,
            take_over=take_over,
        )
        if batch:
            with self.state.lock:
                self.state.resent += sum(1 for c in batch if c.reclaimed)
        return batch

    def _wait_for_more(self, exclude: set[int]) -> bool:
        """Nothing to claim: False when the run holds nothing more for us, else wait a while."""
        self.looked = 0.0  # nothing left to claim: look at once, next time
        with self.store.session() as session:
            look = claims.outlook(session, self.state.run_id, self.worker_id, exclude)
        if look.waiting == 0 and look.others_sending == 0:
            return False
        delay = MAX_WAIT / 5
        if look.waiting and look.next_due is not None:
            delay = (look.next_due - utcnow()).total_seconds()
        self.sender.stop.wait(min(max(delay, 0.01), MAX_WAIT))
        return True

    def _send_batch(self, batch: list[claims.Claim]) -> bool:
        """Send a claimed batch in order; False when this thread should stop."""
        for i, item in enumerate(batch):
            if self._stopping():
                self._release(batch[i:])
                return False
            template = self.state.templates.get(item.segment_id)
            if template is None:  # its posts are gone (skip_segment raced this claim)
                claims.skip_segment(self.store, item.segment_id, "its posts are gone")
                continue
            built = self._build(template, item)
            try:
                result = self._send(item, built)
            except SmtpConnectError as exc:
                return self._connection_lost(exc, batch[i:])
            self._record(item, built, result)
        return True

    def _build(self, template: MessageTemplate, item: claims.Claim) -> BuiltMessage:
        settings, digest_name = self.sender.settings, self.sender.digest.name
        built = template.build(
            to_email=item.email,
            to_name=item.name,
            unsubscribe_url=unsubscribe_url(
                settings, item.subscriber_id, digest_name, item.link_key
            ),
            categories=item.categories,
            preferences_url=preferences_url(settings, item.subscriber_id, item.link_key),
        )
        signer = self.sender.envelope.signer
        return built if signer is None else replace(built, data=signer.sign(built.data))

    def _send(self, item: claims.Claim, built: BuiltMessage) -> SendResult:
        """Hand one message to the server; until it is recorded, its outcome is uncertain."""
        with self.state.lock:
            self.state.uncertain.add(item.delivery_id)
        try:
            mail_from = self.sender.envelope.mail_from(self.state.run_id, item.subscriber_id)
            return self.smtp.send(mail_from, item.email, built.data)
        except SmtpConnectError:
            with self.state.lock:
                self.state.uncertain.discard(item.delivery_id)
            raise

    def _record(self, item: claims.Claim, built: BuiltMessage, result: SendResult) -> None:
        reply = f"{result.code} {result.reply}".strip()
        if result.outcome == "sent":
            self.recorder.mark_sent(item.delivery_id, built.message_id, reply)
        elif result.outcome == "permanent":
            claims.mark_failed(self.store, item.delivery_id, item.subscriber_id, reply)
        else:
            claims.mark_transient(self.store, item.delivery_id, reply, self.backoff)
        final = result.outcome != "transient"
        self._count_try(item.delivery_id, final=final, answered=True)

    def _connection_lost(self, exc: SmtpConnectError, rest: list[claims.Claim]) -> bool:
        """The connection failed sending rest[0]: retry it later, or give the pass up."""
        state = self.state
        with state.lock:
            first = not state.any_sent
            state.connection_failures += 1
            give_up = first or state.connection_failures >= CONNECTION_FAILURES_TO_GIVE_UP
            if give_up and state.error is None:
                state.error = exc
        if first:  # never reached the server: leave everything as it was
            self._release(rest)
            state.abort.set()
            return False
        reply = f"connection: {exc}"
        claims.mark_transient(self.store, rest[0].delivery_id, reply, self.backoff)
        self._count_try(rest[0].delivery_id, final=False)
        self._release(rest[1:])
        if give_up:
            state.abort.set()
            return False
        self.sender.stop.wait(min(self.backoff, MAX_WAIT))
        return True

    def _count_try(self, delivery_id: int, *, final: bool, answered: bool = False) -> None:
        """Count one recorded try: progress, retries left in this pass, the server's health."""
        state = self.state
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
                if tries >= self.max_attempts:
                    state.given_up.add(delivery_id)
                return
        if self.sender.progress is not None:
            self.sender.progress(done, total)
