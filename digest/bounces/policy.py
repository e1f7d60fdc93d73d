"""The bounce policy: a report to a delivery, then hard -> bounced, soft counted, complaint -> out.

mail / relays ─► report ─► policy ─► store.bounce_events (its SQL and transaction); each report is
acted on once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.bounces.report import Failure, Report
from digest.mail.verp import code_in_address, read_verp_code
from digest.store import Store
from digest.store import bounce_events as events
from digest.store.bounce_events import Transaction
from digest.store.models import (
    ACTIVE,
    BOUNCED,
    EVENT_COMPLAINT,
    EVENT_HARD,
    EVENT_SOFT,
    PENDING,
    UNSUBSCRIBED,
)

# Worst first: a report naming one delivery acts on its most serious failure.
SEVERITY = {"complaint": 3, "hard": 2, "soft": 1}
# A report without a VERP code acts only on a delivery sent this recently: a DSN comes back
# within the sending MTA's queue lifetime (Postfix: 5 days), a complaint within days.
MATCH_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class BouncePolicy:
    """What the policy needs: the VERP secret and address, the soft bounce limits, and how
    recent a delivery must be for a report without a VERP code to act on it."""

    secret: str
    bounce_address: str | None = None
    soft_limit: int = 3
    soft_window: timedelta = timedelta(days=30)
    match_window: timedelta = MATCH_WINDOW


@dataclass
class Tally:
    """What a batch of reports did (the `digest bounces --format json` counts), and why
    reports were unmatched or ignored (`reasons`: a count per reason)."""

    read: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    unmatched: int = 0
    ignored: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, outcome: str, reason: str) -> Tally:
        """One report `unmatched` or `ignored`, for this reason."""
        tally = cls()
        setattr(tally, outcome, 1)
        tally.reasons[reason] = 1
        return tally

    def add(self, other: Tally) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def as_dict(self) -> dict[str, int]:
        """The counts."""
        return {name: getattr(self, name) for name in COUNTS}

    def as_json(self) -> dict[str, object]:
        """The counts and the reasons (most frequent first)."""
        reasons = dict(sorted(self.reasons.items(), key=lambda item: (-item[1], item[0])))
        return {**self.as_dict(), "reasons": reasons}

    def describe(self) -> str:
        """One line: what was read and what it did."""
        return (
            f"read {self.read} message{'' if self.read == 1 else 's'}: "
            f"{self.hard} hard, {self.soft} soft, {self.complaints} "
            f"complaint{'' if self.complaints == 1 else 's'}, {self.unmatched} unmatched, "
            f"{self.ignored} ignored, {self.duplicates} seen before"
        )


COUNTS = ("read", "hard", "soft", "complaints", "unmatched", "ignored", "duplicates")
# Why a report changed nothing (the `reasons` of --format json).
NOT_A_REPORT = "not a bounce or complaint (a warning, an auto-reply, a positive DSN)"
FORGED_CODE = "a VERP code that does not verify or names no delivery"
NO_CODE = "no VERP code and no Message-ID of a message we sent (VERP is on)"
NOT_SENT = "names no address we sent to within bounces.match_window"
TOO_MANY = "lists more than 50 recipients (each message of ours has one)"
MAX_FAILURES = 50
MANY = "names more than one address we sent to (each message of ours has one recipient)"


class _Forged:
    """A VERP address of ours whose code does not verify, or names no delivery."""


FORGED = _Forged()


def apply_report(
    store: Store,
    policy: BouncePolicy,
    report: Report,
    *,
    now: datetime,
    nonces: tuple[str, ...] = (),
) -> Tally:
    """Act on one report, once: the same key a second time changes nothing.

    `nonces` (a relay's one-time tokens) are recorded in the same transaction.
    """
    tally = events.act_once(
        store,
        report.key,
        now,
        lambda session: _apply(session, policy, report, now),
        nonces=nonces,
    )
    return Tally(duplicates=1) if tally is None else tally


def _apply(session: Transaction, policy: BouncePolicy, report: Report, now: datetime) -> Tally:
    """One report acts on at most one delivery: the one its VERP code or quoted Message-ID
    names, or (no VERP, or a relay's signed event) the one recent delivery to the one
    address of ours it names."""
    actionable = [f for f in report.failures if f.kind in SEVERITY]
    if not actionable:
        return Tally.of("ignored", NOT_A_REPORT)
    target = _delivery_named(session, policy, report)
    if isinstance(target, _Forged):
        return Tally.of("ignored", FORGED_CODE)
    if target is None:
        if report.origin == "mail" and policy.bounce_address:
            # With VERP every message of ours came back to a coded address: a report
            # without the code is not about a message of ours (or is forged).
            return Tally.of("unmatched", NO_CODE)
        found = _recent_by_address(session, policy, actionable, now)
        if isinstance(found, str):
            return Tally.of("unmatched", found)
        target, actionable = found
    tally = Tally()
    worst = max(actionable, key=lambda f: SEVERITY[f.kind])
    _act(session, policy, target, worst, report.origin, now, tally)
    return tally


def _delivery_named(
    session: Transaction, policy: BouncePolicy, report: Report
) -> events.Target | _Forged | None:
    """The delivery a VERP address or the quoted Message-ID names; FORGED for a bad code."""
    if policy.bounce_address:
        codes = [
            code
            for address in report.return_paths
            if (code := code_in_address(policy.bounce_address, address)) is not None
        ]
        if codes:
            ref = read_verp_code(policy.secret, codes[0])
            if ref is None:
                return FORGED
            target = events.delivery_target(session, ref.run_id, ref.subscriber_id)
            return FORGED if target is None else target
    if report.original_message_id:
        # Message-IDs carry 64 random bits: quoting one is knowing a message we sent.
        return events.message_id_target(session, report.original_message_id)
    return None


def _recent_by_address(
    session: Transaction, policy: BouncePolicy, failures: list[Failure], now: datetime
) -> tuple[events.Target, list[Failure]] | str:
    """The one delivery sent within match_window to the addresses the failures name."""
    if len(failures) > MAX_FAILURES:
        return TOO_MANY
    since = now - policy.match_window
    found: dict[int, tuple[events.Target, list[Failure]]] = {}
    for failure in failures:
        for address in failure.addresses:
            target = events.recent_delivery_target(session, address, since)
            if target is not None:
                found.setdefault(target.subscriber_id, (target, []))[1].append(failure)
                break
        if len(found) > 1:
            return MANY
    if not found:
        return NOT_SENT
    if len(found) > 1:
        return MANY
    return next(iter(found.values()))


def _act(
    session: Transaction,
    policy: BouncePolicy,
    target: events.Target,
    failure: Failure,
    origin: str,
    now: datetime,
    tally: Tally,
) -> None:
    status = f" {failure.status_code}" if failure.status_code else ""
    detail = f": {failure.reason}" if failure.reason else ""
    if failure.kind == "complaint":
        tally.complaints += 1
        events.record_event(
            session,
            target,
            kind=EVENT_COMPLAINT,
            status_code=None,
            reason=failure.reason,
            origin=origin,
            now=now,
        )
        events.change_status(
            session,
            target.subscriber_id,
            UNSUBSCRIBED,
            f"complaint ({origin}){detail}",
            now,
            only_from=(ACTIVE, PENDING, BOUNCED),
        )
        return
    kind = EVENT_HARD if failure.kind == "hard" else EVENT_SOFT
    events.record_event(
        session,
        target,
        kind=kind,
        status_code=failure.status_code,
        reason=failure.reason,
        origin=origin,
        now=now,
    )
    if kind == EVENT_HARD:
        tally.hard += 1
        reason = f"hard bounce ({origin}){status}{detail}"
    else:
        tally.soft += 1
        since = now - policy.soft_window
        count = events.soft_bounces_since(session, target.subscriber_id, since)
        if count < policy.soft_limit:
            return
        reason = f"{count} soft bounces within {_days(policy.soft_window)}, last{status}{detail}"
    events.change_status(
        session, target.subscriber_id, BOUNCED, reason, now, only_from=(ACTIVE, PENDING)
    )


def _days(window: timedelta) -> str:
    days = window.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{window.total_seconds() / 3600:g} hours"


def nonce_seen(store: Store, key: str) -> bool:
    """Whether a one-time value (a relay's signing token) was used by an earlier call."""
    with store.session() as session:
        return events.is_processed(session, key)
