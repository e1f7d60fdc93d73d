"""The confirmation mailer of `digest serve`: a background thread that works the two queues.

web ─► store: POST /subscribe only records the request; this decides it (store.signups) and
sends, retries or gives up its confirmation mail (store.confirmations), outside the request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from typing import TYPE_CHECKING

from digest.errors import DatabaseError, SmtpError
from digest.mail.envelope import Envelope
from digest.render.confirmation import confirmation_message
from digest.smtp.client import SmtpSender
from digest.smtp.stream import WireMessage, send_one
from digest.store import confirmations
from digest.store.models import utcnow
from digest.store.signups import SignupLimits, process_signups
from digest.tokens import CONFIRM_MAX_AGE, confirm_url

if TYPE_CHECKING:
    from digest.settings import Settings
    from digest.store import Store

log = logging.getLogger("digest.web")

POLL_INTERVAL = 2.0  # seconds between looks at the queue when nobody wakes the mailer
FIRST_RETRY = 30.0  # seconds before a mail the relay did not take is tried again, doubled
LAST_RETRY = 3600.0  # the longest wait between tries
PRUNE_EVERY = timedelta(minutes=10)
LINK_LIFE = timedelta(seconds=CONFIRM_MAX_AGE)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the n-th failed try (30 s, 1 min, 2 min ... at most 1 h)."""
    return timedelta(seconds=min(FIRST_RETRY * 2 ** min(attempts, 20), LAST_RETRY))


class ConfirmationMailer:
    """Sends queued confirmation mails: at once when woken, else every POLL_INTERVAL."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        sender_factory: Callable[[], SmtpSender],
        *,
        limits: SignupLimits,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.limits = limits
        self.settings = settings
        self.store = store
        self.sender_factory = sender_factory
        self.poll_interval = poll_interval
        # DKIM (email.dkim) signs confirmation mails like digests; the key is read once.
        self.envelope = Envelope(settings)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._pruned_at: datetime | None = None

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background thread (once; a second call does nothing)."""
        with self._start_lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="digest-confirmation-mailer", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after the mail in hand; what is left stays queued for next time."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def wake(self) -> None:
        """Look at the queue now (a sign-up may have queued a mail)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while self.run_once() and not self._stop.is_set():
                    pass
            except DatabaseError as exc:
                log.error("confirmation mailer: %s", exc.message)
            except Exception:
                # The thread must outlive a bug in one round: log it and look again later.
                log.exception("confirmation mailer failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def run_once(self, now: datetime | None = None) -> int:
        """Decide the sign-ups received, then send the mails due now (one batch, one SMTP
        session); how many sign-ups and mails were handled."""
        when = now or utcnow()
        decided = 0
        while outcomes := process_signups(self.store, self.limits):
            decided += len(outcomes)
        if self._pruned_at is None or when - self._pruned_at > PRUNE_EVERY:
            confirmations.prune(self.store, max_age=LINK_LIFE, now=when)
            self._pruned_at = when
        batch = confirmations.claim_due(self.store, now=when)
        if not batch:
            return decided
        try:
            with self.sender_factory() as sender:
                for index, mail in enumerate(batch):
                    if self._stop.is_set():
                        confirmations.release(
                            self.store, [m.confirmation_id for m in batch[index:]]
                        )
                        break
                    self._send_one(sender, mail, when)
        except SmtpError as exc:
            # The relay is down or refused the session: everything not yet recorded waits.
            log.error("confirmation emails not sent, will retry: %s", exc.message)
            self._give_back(batch, exc.message, when)
        return decided + len(batch)

    def _send_one(self, sender: SmtpSender, mail: confirmations.QueuedMail, now: datetime) -> None:
        if mail.created_at + LINK_LIFE < now:
            confirmations.mark_failed(self.store, mail.confirmation_id, "expired unsent", now=now)
            return
        link = confirm_url(self.settings, mail.subscriber_id, mail.nonce)
        # No name: nothing the requester typed goes into a mail sent in the list's name.
        msg = confirmation_message(self.settings, to_email=mail.email, to_name="", link=link)
        from_addr = self.settings.email.from_address
        utf8 = not (mail.email.isascii() and from_addr.isascii())
        data = msg.as_bytes(policy=policy.SMTP.clone(utf8=utf8, max_line_length=998))
        result = send_one(sender, WireMessage.of(from_addr, mail.email, self.envelope.sign(data)))
        reply = f"{result.code} {result.reply}".strip()
        if result.outcome == "sent":
            confirmations.mark_sent(self.store, mail.confirmation_id, now=now)
            log.info("confirmation email sent to subscriber %d", mail.subscriber_id)
        elif result.outcome == "permanent":
            confirmations.mark_failed(self.store, mail.confirmation_id, reply, now=now)
            log.warning(
                "confirmation email to subscriber %d refused: %s", mail.subscriber_id, reply
            )
        else:
            at = now + retry_delay(mail.attempts)
            confirmations.mark_retry(self.store, mail.confirmation_id, reply, at=at)
            log.warning(
                "confirmation email to subscriber %d deferred: %s", mail.subscriber_id, reply
            )

    def _give_back(self, batch: list[confirmations.QueuedMail], error: str, now: datetime) -> None:
        for mail in batch:  # those already recorded as sent or refused are left as they are
            at = now + retry_delay(mail.attempts)
            confirmations.mark_retry(self.store, mail.confirmation_id, error, at=at)
