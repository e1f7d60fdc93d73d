"""One SMTP connection's loop in a run: claim a batch, re-check each subscriber, build, stream,
record the outcomes a window at a time, before the next window's first body goes.

sending (the process) ─► connection ─► mail.message, smtp.stream, store.claims, store.journal.

What can reach a subscriber twice, and is counted (store.claims counts it on the run when it is
sent again): per connection, the message whose final dot was on the wire when the sender died
(with delivery.mark_window 1, the default: each accepted message is in the thread's journal
before the next body goes), or the window of messages sent but not yet recorded (a larger
mark_window: no journal); or one that got no answer after its final dot (a timeout, a closed
socket).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.delivery.limits import QuotaReached, RelayLimits
from digest.errors import SmtpConnectError, SmtpTimeoutError
from digest.mail.envelope import Envelope
from digest.mail.message import MessageTemplate, dot_stuff
from digest.settings import DeliverySettings, Settings, SmtpSettings
from digest.settings.durations import format_duration
from digest.smtp.client import SmtpSender
from digest.smtp.replies import SendResult
from digest.smtp.stream import SessionLost, WireMessage, stream
from digest.store import Store, claims, rates
from digest.store.journal import Journal
from digest.store.models import ACTIVE, utcnow
from digest.store.recorder import SentMark
from digest.tokens import MessageLinks

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total) of the run, from the sending threads

# Deliveries claimed at once by one connection's thread. Only the one whose body is on the
# wire can be in flight at a crash (store.workers tells it from the rest), so a bigger batch
# costs no duplicates; each claim is a transaction, so a small one costs time (32 -> 128:
# claims went from 12% to 3% of a run's Python time in bench/send.py).
CLAIM_BATCH = 128
# Connection failures in a row (over all threads) after which a pass gives up.
CONNECTION_FAILURES_TO_GIVE_UP = 3
TAKE_OVER_EVERY = 5.0  # seconds between looks for a dead sender's deliveries while busy
MAX_WAIT = 1.0  # seconds between looks at a run while waiting for retries or other senders
# However long the window (delivery.mark_window), sent marks wait no longer than this: on a slow
# relay a window of messages can take long, and a crash then would re-send them all.
MARK_WINDOW_SECONDS = 0.5
# With a journal of sent messages (store.journal, delivery.mark_window 1), the database catches
# up this many accepted messages at a time per connection (with the statuses of the next ones).
JOURNAL_WINDOW = 16
# A wait longer than this (a retry's backoff, another sender's lease) prints one line saying
# what it waits for and until when: a silent minute looks like a hang.
WAIT_TO_TELL = 2.0
DESTINATION_WAIT = "its destination's limit: waiting for a slot"
# What _admit says of a message (see there).
GO, BUSY, HELD, QUOTA_FULL = "go", "busy", "held", "quota full"


@dataclass
class SendPass:
    """Shared state of the threads sending one run in this process."""

    run_id: int
    templates: dict[int, MessageTemplate]
    total: int
    done: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    abort: threading.Event = field(default_factory=threading.Event)
    given_up: set[int] = field(default_factory=set)  # transient too often in this pass
    # Deliveries whose destination's per-hour or per-day limit is used up (left for a later
    # send), and when each such destination frees a slot.
    held: set[int] = field(default_factory=set)
    held_until: dict[str, datetime] = field(default_factory=dict)
    uncertain: set[int] = field(default_factory=set)  # handed to the server, outcome unrecorded
    tries: dict[int, int] = field(default_factory=dict)
    any_sent: bool = False
    connection_failures: int = 0
    timeouts: int = 0  # in a row, over every connection (smtp.max_timeouts stops the pass)
    throttled: int = 0  # throttling replies in this pass
    throttled_since: float = 0.0  # time.monotonic() of the first throttle since a clean reply
    error: BaseException | None = None
    told: dict[str, datetime] = field(default_factory=dict)  # waits told, by what was awaited
    # time.monotonic() at which this pass gives its claims back (a later relay's pass, so the
    # run can try the first relay again: smtp.failback_after); None: it runs until done.
    ends_at: float | None = None

    def over(self) -> bool:
        """The pass has reached ends_at."""
        return self.ends_at is not None and time.monotonic() >= self.ends_at


@dataclass(frozen=True)
class ConnectionContext:
    """What a connection's loop works with, handed in by the process that runs it."""

    store: Store
    worker_id: str  # this process's row in store.workers: its claims carry it
    digest: str
    settings: Settings  # the links (web.*) each message carries
    delivery: DeliverySettings  # retries, backoff, the mark window
    relay: SmtpSettings  # the relay this connection talks to
    envelope: Envelope  # MAIL FROM (VERP) and DKIM
    stop: threading.Event  # set: finish the message on the wire, record it, give back the rest
    progress: Progress | None = None
    limits: RelayLimits | None = None  # the relay's rates and slowdown (None: no limits at all)
    fail_over: bool = False  # another relay follows this one in the chain


def _deliveries(count: int) -> str:
    return f"{count} delivery" if count == 1 else f"{count} deliveries"


class ConnectionLoop:
    """One SMTP connection's thread of a pass."""

    def __init__(
        self,
        context: ConnectionContext,
        state: SendPass,
        smtp: SmtpSender,
        recorder: claims.Recorder,
        journal: Journal | None = None,
        *,
        index: int = 0,
    ) -> None:
        self.context = context
        self.index = index  # this connection's number in the process (a throttled relay gets fewer)
        self.pause = 0.0  # seconds to wait before the next message (the relay throttled)
        self.throttle_streak = 0  # throttling replies this connection heard in a row
        self.quota_reached: QuotaReached | None = None
        self.gate: claims.Claim | None = None  # handed to the stream, its body not yet gated
        self.state = state
        self.smtp = smtp
        self.recorder = recorder
        self.store = context.store
        self.worker_id = context.worker_id
        self.backoff = context.delivery.retry_backoff
        self.max_attempts = context.delivery.max_attempts
        self.max_timeouts = context.relay.max_timeouts
        self.looked = 0.0  # when this thread last looked for dead senders' deliveries
        self.waiting_since: float | None = None  # on other senders' claims, since (monotonic)
        self.message_ids: dict[int, str] = {}  # delivery id -> Message-ID, while in the stream
        self.set_aside: set[int] = set()  # of this batch: skipped or held back, never sent
        # With a journal (store.journal) each accepted message is noted there before the next
        # body goes, and the database catches up JOURNAL_WINDOW at a time.
        self.journal = journal
        self.window = JOURNAL_WINDOW if journal else context.delivery.mark_window
        self.unmarked: list[SentMark] = []  # accepted, not yet recorded (fewer than the window)
        self.links: MessageLinks | None = None  # made with the first message (web.secret checked)

    def run(self) -> None:
        while not self._stopping():
            with self.state.lock:
                exclude = self.state.given_up | self.state.held
            batch = self._claim(exclude)
            if not batch:
                if not self._wait_for_more(exclude):
                    return
                continue
            self.waiting_since = None
            if not self._send_batch(batch):
                return

    def _stopping(self) -> bool:
        return self.context.stop.is_set() or self.state.abort.is_set() or self.state.over()

    def _release(self, batch: list[claims.Claim]) -> None:
        ids = [c.delivery_id for c in batch]
        claims.release_claims(self.store, self.state.run_id, self.worker_id, ids)

    def _claim(self, exclude: set[int]) -> list[claims.Claim]:
        """The next batch of due deliveries, now and then taking over a dead sender's."""
        take_over = time.monotonic() - self.looked > TAKE_OVER_EVERY
        if take_over:
            self.looked = time.monotonic()
        return claims.claim(
            self.store,
            self.state.run_id,
            self.worker_id,
            CLAIM_BATCH,
            recorder=self.recorder,
            exclude=exclude,
            take_over=take_over,
        )

    def _wait_for_more(self, exclude: set[int]) -> bool:
        """Nothing to claim: False when the run holds nothing more for us, else wait a while."""
        self.looked = 0.0  # nothing left to claim: look at once, next time
        with self.store.session() as session:
            look = claims.outlook(session, self.state.run_id, self.worker_id, exclude)
        if look.waiting == 0 and look.others_sending == 0:
            return False
        now = utcnow()
        delay = MAX_WAIT / 5
        if look.waiting and look.next_due is not None:
            delay = (look.next_due - now).total_seconds()
            if delay > WAIT_TO_TELL and not look.others_sending:
                self._tell_wait(
                    "retry",
                    look.next_due,
                    f"{_deliveries(look.waiting)} the relay deferred (delivery.retry_backoff)",
                )
        if look.others_sending and look.lease_until is not None:
            if self.waiting_since is None:
                self.waiting_since = time.monotonic()
            elif time.monotonic() - self.waiting_since > WAIT_TO_TELL:
                self._tell_wait(
                    "lease",
                    look.lease_until,
                    f"{_deliveries(look.others_sending)} another sender holds (they are taken "
                    "over then if it stopped)",
                )
        self.context.stop.wait(min(max(delay, 0.01), MAX_WAIT))
        return True

    def _tell_wait(self, what: str, until: datetime, text: str) -> None:
        """One line per wait (over every thread of the pass): what for, and until when."""
        with self.state.lock:
            told = self.state.told.get(what)
            if told is not None and abs((until - told).total_seconds()) < WAIT_TO_TELL:
                return
            self.state.told[what] = until
        when = until.astimezone(self.context.settings.site.tz).isoformat(timespec="seconds")
        log.warning("waiting until %s for %s", when, text)

    def outgoing(
        self, batch: list[claims.Claim], pulled: list[claims.Claim]
    ) -> Iterator[tuple[claims.Claim, WireMessage]]:
        """The batch's messages, each made right before its envelope goes (smtp_stream asks).

        Every `delivery.mark_window` messages (and at least every MARK_WINDOW_SECONDS), the
        accepted messages not yet recorded are recorded and the next window's subscribers'
        statuses read, in one commit: so before any body is written, fewer than the window are
        sent and unrecorded, and after an unsubscribe commits, at most a window's messages per
        connection (those whose status was read before it) can still go out.
        """
        statuses: dict[int, str | None] = {}
        read_at = 0.0
        tail: list[claims.Claim] = []  # waiting for a busy destination
        went = 0
        for index, item in enumerate(batch):
            self._gate_previous()
            if self._stopping():
                break
            template = self.state.templates.get(item.segment_id)
            if template is None:  # its posts are gone (skip_segment raced this claim)
                claims.skip_segment(self.store, item.segment_id, "its posts are gone")
                pulled.append(item)  # settled: nothing of it is left to release
                self.set_aside.add(item.delivery_id)
                continue
            if (
                item.subscriber_id not in statuses
                or time.monotonic() - read_at > MARK_WINDOW_SECONDS
            ):
                statuses = self._settle(batch[index : index + self.window])
                read_at = time.monotonic()
            status = statuses[item.subscriber_id]
            if status != ACTIVE:  # left, bounced, erased, or left this digest
                claims.skip_delivery(
                    self.store, item.delivery_id, f"subscriber is {status or 'erased'}"
                )
                pulled.append(item)
                self.set_aside.add(item.delivery_id)
                self._count_try(item.delivery_id, final=True)
                continue
            verdict = self._admit(item)
            if verdict == QUOTA_FULL:
                break
            if verdict == HELD:  # its destination's day (or hour) is used up: back, settled
                pulled.append(item)
                self.set_aside.add(item.delivery_id)
                continue
            if verdict == BUSY:
                pulled.append(item)  # its destination is busy: after the others
                tail.append(item)
                continue
            pulled.append(item)
            went += 1
            yield self._going(item, template)
        if tail and went and not self._stopping() and self.quota_reached is None:
            self._put_back_tail(tail)  # others may be waiting in the run: they go first
        elif tail:
            yield from self._drain(tail)  # only slow destinations are left: at their pace
        self._gate_previous()
        self.flush_marks()  # before the stream writes the last body

    def _going(
        self, item: claims.Claim, template: MessageTemplate
    ) -> tuple[claims.Claim, WireMessage]:
        """The message about to go; its body waits for its slot (_gate_previous)."""
        with self.state.lock:
            self.state.uncertain.add(item.delivery_id)
        self.gate = item
        return item, self.envelope_and_bytes(template, item)

    def _drain(self, tail: list[claims.Claim]) -> Iterator[tuple[claims.Claim, WireMessage]]:
        """Messages that waited for their destination: each at its destination's pace."""
        for index, item in enumerate(tail):
            self._gate_previous()
            if self._stopping() or self.quota_reached is not None:
                self._release(tail[index:])
                return
            status = self._settle([item])[item.subscriber_id]
            template = self.state.templates.get(item.segment_id)
            if status != ACTIVE or template is None:
                claims.skip_delivery(
                    self.store, item.delivery_id, f"subscriber is {status or 'erased'}"
                )
                self._count_try(item.delivery_id, final=True)
                continue
            verdict = self._admit(item, hold=True)
            if verdict == HELD:
                continue
            if verdict != GO:
                self._release(tail[index:])
                return
            yield self._going(item, template)

    def _put_back_tail(self, tail: list[claims.Claim]) -> None:
        """Back to pending, each due about when its destination may take it (nothing booked)."""
        limits = self.context.limits
        assert limits is not None
        ahead: dict[float, int] = {}
        delays = []
        for item in tail:
            gap = limits.destination_gap(item.email)
            queued = ahead.get(gap, 0)
            ahead[gap] = queued + 1
            delays.append(
                (item.delivery_id, limits.destination_wait_hint(item.email) + gap * queued)
            )
        rates.put_back(self.store, self.state.run_id, self.worker_id, delays, DESTINATION_WAIT)

    def _admit(self, item: claims.Claim, *, hold: bool = False) -> str:
        """May this message's envelope go now (GO)? BUSY: its destination has no slot yet
        (unless `hold`); HELD: its destination's per-hour or per-day limit is used up (the
        delivery is given back for a later send); QUOTA_FULL: the relay's own per-hour or
        per-day limit is used up (quota_reached). Both limits are counted here, before the
        envelope goes, so neither is ever over-run."""
        limits, stop = self.context.limits, self.context.stop
        if self.pause > 0:  # the relay throttled: back off (exponential, with jitter)
            stop.wait(self.pause)
            self.pause = 0.0
        if limits is None:
            return GO
        if not hold and limits.destination_busy(item.email):
            return BUSY
        frees_in = limits.destination_quota(item.email)
        if frees_in > 0:
            self._hold(item, limits.destination_text(item.email), frees_in)
            return HELD
        try:
            limits.quota()
        except QuotaReached as exc:
            self.quota_reached = exc
            return QUOTA_FULL
        return GO

    def _hold(self, item: claims.Claim, destination: str, frees_in: float) -> None:
        """Give the delivery back (due as it was: a send after the limit frees takes it) and
        leave it out of this pass; the pass ends saying until when (QuotaReached)."""
        until = utcnow() + timedelta(seconds=frees_in)
        with self.state.lock:
            self.state.held.add(item.delivery_id)
            known = self.state.held_until.get(destination)
            self.state.held_until[destination] = until if known is None else min(known, until)
        self._release([item])

    def _gate_previous(self) -> None:
        """Before the body of the message last handed to the stream goes (it goes with the
        next envelope, or alone at the end): wait for its slots, so it arrives in them."""
        item, self.gate = self.gate, None
        limits = self.context.limits
        if item is None or limits is None:
            return
        limits.destination_wait(item.email, hold=True)
        limits.wait_turn(self.index, self.context.stop)
        limits.pace(self.context.stop)

    def _settle(self, upcoming: list[claims.Claim]) -> dict[int, str | None]:
        """Record the unrecorded accepted messages and read the upcoming statuses, one commit."""
        marks, self.unmarked = self.unmarked, []
        statuses = self.recorder.settle(marks, [c.subscriber_id for c in upcoming])
        self._recorded(marks)
        if self.journal is not None:
            self.journal.recorded(len(marks))
        return statuses

    def flush_marks(self) -> None:
        """Record the accepted messages whose marks wait for the next status read."""
        marks, self.unmarked = self.unmarked, []
        if marks:
            self.recorder.settle(marks, ())
            self._recorded(marks)
            if self.journal is not None:
                self.journal.recorded(len(marks))

    def _drop_journal(self, exc: OSError) -> None:
        """The journal cannot be written: record what it held, then each message before the
        next body goes."""
        journal = self.journal
        assert journal is not None
        log.warning("journal %s: %s; recording each message in the database", journal.path, exc)
        self.flush_marks()
        journal.close()
        self.journal = None
        self.window = 1

    def _recorded(self, marks: list[SentMark]) -> None:
        if marks:
            with self.state.lock:
                for mark in marks:
                    self.state.uncertain.discard(mark.delivery_id)

    def envelope_and_bytes(self, template: MessageTemplate, item: claims.Claim) -> WireMessage:
        """The one place the envelope sender and the final bytes of a message are made."""
        links = self.links
        if links is None:
            links = self.links = MessageLinks(self.context.settings)
        built = template.build(
            to_email=item.email,
            to_name=item.name,
            unsubscribe_url=links.unsubscribe_url(
                item.subscriber_id, self.context.digest, item.link_key
            ),
            categories=item.categories,
            preferences_url=links.preferences_url(item.subscriber_id, item.link_key),
        )
        self.message_ids[item.delivery_id] = built.message_id
        envelope = self.context.envelope
        wire = built.wire if envelope.signer is None else dot_stuff(envelope.sign(built.data))
        mail_from = envelope.mail_from(self.state.run_id, item.subscriber_id)  # VERP, or From
        return WireMessage(mail_from, item.email, wire)

    def _send_batch(self, batch: list[claims.Claim]) -> bool:
        """Send a claimed batch in order; False when this thread should stop."""
        self.gate = None  # a stream lost before the last body: nothing of it waits for a slot
        pulled: list[claims.Claim] = []
        settled: set[int] = set()
        self.set_aside.clear()
        try:
            for item, result in stream(self.smtp, self.outgoing(batch, pulled)):
                self._record(item, result)
                settled.add(item.delivery_id)
            self.flush_marks()  # the batch's last messages: no next status read to ride on
        except SmtpConnectError as exc:  # SessionLost, or the session could not be opened
            self.flush_marks()
            # Skipped or held back before any of it went: settled already, not the session's.
            done = settled | self.set_aside
            open_items = [c for c in pulled if c.delivery_id not in done]
            return self._session_lost(exc, open_items, batch[len(pulled) :])
        finally:
            self.message_ids.clear()
        if len(pulled) < len(batch):  # stopped (or a quota is full): the rest was never tried
            self._release(batch[len(pulled) :])
            if self.quota_reached is not None:
                with self.state.lock:
                    if self.state.error is None:
                        self.state.error = self.quota_reached
                self.state.abort.set()
            return False
        return True

    def _throttled(self, reply: str) -> None:
        """The relay said slow down: this connection backs off, the process slows down."""
        limits = self.context.limits
        if limits is None:
            self.pause = min(self.backoff, MAX_WAIT)
            return
        self.throttle_streak += 1
        self.pause = limits.slowdown.throttled(reply, streak=self.throttle_streak)
        relay = self.context.relay
        with self.state.lock:
            self.state.throttled += 1
            now = time.monotonic()
            since = self.state.throttled_since = self.state.throttled_since or now
            # Throttled this long without a clean reply: the next relay, or (none left) stop
            # with the rest pending, rather than knock forever.
            if now - since > relay.failover_after.total_seconds():
                if self.state.error is None:
                    self.state.error = SmtpConnectError(
                        f"relay {relay.name} ({relay.where}) throttled for longer than "
                        f"smtp.failover_after ({format_duration(relay.failover_after)})"
                    )
                self.state.abort.set()
        log.info(
            "relay %s throttles (%s): %s; this connection waits %.2f s",
            self.context.relay.name,
            reply,
            limits.slowdown.describe(),
            self.pause,
        )

    def _record(self, item: claims.Claim, result: SendResult) -> None:
        reply = f"{result.code} {result.reply}".strip()
        if result.throttled:  # not the recipient's failure: again later, no attempt counted
            self._throttled(reply)
            rates.put_back(
                self.store,
                self.state.run_id,
                self.worker_id,
                [(item.delivery_id, self.pause)],
                f"{reply} (throttled; sending again)",
            )
            self.message_ids.pop(item.delivery_id, None)
            with self.state.lock:
                self.state.uncertain.discard(item.delivery_id)
                self.state.any_sent = True  # the relay answers
                self.state.connection_failures = 0
            return
        if result.outcome == "sent":
            self.state.throttled_since = 0.0  # clean again
            self.throttle_streak = 0
            if self.context.limits is not None:
                self.context.limits.slowdown.clean()
        if result.outcome == "sent":
            # Recorded with the next window's status read (outgoing), which comes before the
            # body that would make the window's count of sent, unrecorded messages: the crash
            # bound holds.
            message_id = self.message_ids.pop(item.delivery_id)
            self.unmarked.append(SentMark(item.delivery_id, message_id, reply))
            if self.journal is not None:
                try:
                    self.journal.write(item.delivery_id, message_id, reply)
                except OSError as exc:  # a full disk: the database it is, one at a time
                    self._drop_journal(exc)
        elif result.outcome == "permanent":
            claims.mark_failed(self.store, item.delivery_id, item.subscriber_id, reply)
        else:
            claims.mark_transient(self.store, item.delivery_id, reply, self.backoff)
        final = result.outcome != "transient"
        # A sent message stays uncertain until its mark is written.
        self._count_try(item.delivery_id, final=final, answered=True, sent=result.outcome == "sent")

    def _session_lost(
        self, exc: SmtpConnectError, open_items: list[claims.Claim], unpulled: list[claims.Claim]
    ) -> bool:
        """The session failed: count it, settle what it held, retry later or give the pass up."""
        state = self.state
        possibly_sent = exc.possibly_sent if isinstance(exc, SessionLost) else None
        if isinstance(exc, SessionLost) and possibly_sent is None and (exc.throttled or exc.after):
            return self._relay_closed(exc, [*open_items, *unpulled])
        timed_out = isinstance(exc, SmtpTimeoutError) or (
            isinstance(exc, SessionLost) and exc.timed_out
        )
        with state.lock:
            first = not state.any_sent and possibly_sent is None
            state.connection_failures += 1
            state.timeouts = state.timeouts + 1 if timed_out else 0
            give_up = first or state.connection_failures >= CONNECTION_FAILURES_TO_GIVE_UP
            error: BaseException = exc
            if state.timeouts >= self.max_timeouts:
                give_up = True
                error = SmtpTimeoutError(
                    f"SMTP server {self.smtp.where} did not answer within smtp.timeout "
                    f"({self.smtp.smtp.timeout:g} s) {state.timeouts} times in a row "
                    "(smtp.max_timeouts): stopped"
                )
            if give_up and state.error is None:
                state.error = error
        rest = list(unpulled)
        if isinstance(possibly_sent, claims.Claim):
            # Its final dot got no answer: it may have arrived. Pending again, marked, so it is
            # counted as a possible re-send when it goes out again.
            claims.mark_transient(
                self.store, possibly_sent.delivery_id, claims.NO_ANSWER_MARK, self.backoff
            )
            self._count_try(possibly_sent.delivery_id, final=False)
            rest += [c for c in open_items if c is not possibly_sent]
        elif open_items and not first:
            # Never fully handed over: the first is retried after a backoff (a message that
            # kills the session every time must not spin), the others at once.
            reply = f"connection: {exc}"
            claims.mark_transient(self.store, open_items[0].delivery_id, reply, self.backoff)
            self._count_try(open_items[0].delivery_id, final=False)
            rest += open_items[1:]
        else:
            rest += open_items
        with state.lock:
            for c in rest:
                state.uncertain.discard(c.delivery_id)
        self._release(rest)
        if give_up:
            state.abort.set()
            return False
        self.context.stop.wait(min(self.backoff, MAX_WAIT))
        return True

    def _relay_closed(self, exc: SessionLost[claims.Claim], rest: list[claims.Claim]) -> bool:
        """A 421, or a relay that closed after taking messages on the session: nothing it held
        was taken, nothing failed; reconnect (after a backoff when it throttled)."""
        if exc.throttled:
            self._throttled(exc.message)
        else:
            log.info(
                "relay %s closed the session after %d messages; reconnecting",
                self.context.relay.name,
                exc.after,
            )
        with self.state.lock:
            for c in rest:
                self.state.uncertain.discard(c.delivery_id)
        self._release(rest)
        self.context.stop.wait(self.pause)
        self.pause = 0.0
        return True

    def _count_try(
        self, delivery_id: int, *, final: bool, answered: bool = False, sent: bool = False
    ) -> None:
        """Count one recorded try: progress, retries left in this pass, the server's health.

        sent: accepted, its mark not yet written (uncertain until it is)."""
        state = self.state
        with state.lock:
            if sent:
                state.uncertain.add(delivery_id)
            else:
                state.uncertain.discard(delivery_id)
            if answered:  # the server answered: it is up
                state.any_sent = True
                state.connection_failures = 0
                state.timeouts = 0
            if final:
                state.done += 1
                done, total = state.done, state.total
            else:
                tries = state.tries.get(delivery_id, 0) + 1
                state.tries[delivery_id] = tries
                if tries >= self.max_attempts:
                    state.given_up.add(delivery_id)
                return
        if self.context.progress is not None:
            self.context.progress(done, total)
            note = getattr(self.context.progress, "note", None)  # the CLI's bar shows it
            if callable(note) and self.context.limits is not None:
                note(self.context.limits.describe())
