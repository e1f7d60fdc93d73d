"""Shared set-up for the bounce tests: the sample messages, subscribers and a sent run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digest.bounces.policy import BouncePolicy
from digest.store import Store
from digest.store.models import D_SENT, Delivery, Run, Segment
from digest.store.subscribers import add_subscriber, list_subscribers

SAMPLES = Path(__file__).parents[1] / "bounce_samples"
SECRET = "bounce-test-secret-0123456789"
BOUNCE_ADDRESS = "bounces@example.com"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# The samples come back to the plain bounce address (no VERP): they act through the address of
# a recent delivery. With VERP on, only a VERP code or a quoted Message-ID of ours acts.
POLICY = BouncePolicy(secret=SECRET)
VERP_POLICY = BouncePolicy(secret=SECRET, bounce_address=BOUNCE_ADDRESS)

# Who each sample is about; henry and ivy are bystanders that nothing may touch.
SUBSCRIBERS = (
    "alice@example.net",
    "bob@example.org",
    "carol@corp.example.com",
    "dan@example.org",
    "erin@example.com",
    "frank@example.net",
    "grace@example.net",
    "henry@example.net",
    "ivy@example.com",
)
# After every sample was read once.
EXPECTED_STATUS = {
    "alice@example.net": "bounced",  # Postfix DSN, 5.1.1
    "bob@example.org": "bounced",  # Exim text bounce
    "carol@corp.example.com": "bounced",  # Exchange NDR
    "dan@example.org": "bounced",  # Gmail text bounce
    "erin@example.com": "unsubscribed",  # ARF abuse report
    "frank@example.net": "active",  # one soft bounce: under the limit
    "grace@example.net": "active",  # a delay warning is no bounce
    "henry@example.net": "active",  # an out-of-office reply
    "ivy@example.com": "active",
}
EXPECTED_COUNTS = {
    "read": 8,
    "hard": 4,
    "soft": 1,
    "complaints": 1,
    "unmatched": 0,
    "ignored": 2,
    "duplicates": 0,
}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sample_names() -> list[str]:
    return sorted(p.name for p in SAMPLES.glob("*.eml"))


def add_subscribers(
    store: Store, addresses: Sequence[str] = SUBSCRIBERS, *, mailed: bool = True
) -> dict[str, int]:
    """Active subscribers (mailed: each sent one message at NOW); their ids by address."""
    ids = {address: add_subscriber(store, address)[0].id for address in addresses}
    if mailed and ids:
        sent_run(store, list(ids.values()))
    return ids


def statuses(store: Store) -> dict[str, str]:
    return {row.email: row.status for row in list_subscribers(store)}


@dataclass(frozen=True)
class SentRun:
    run_id: int
    delivery_ids: dict[int, int]  # subscriber id -> delivery id


def sent_run(
    store: Store,
    subscriber_ids: Sequence[int],
    message_ids: dict[int, str] | None = None,
    *,
    sent_at: datetime = NOW,
) -> SentRun:
    """A finished run of `weekly` that sent one message to each subscriber."""
    with store.session() as session:
        run = Run(digest="weekly", as_of=NOW, started_at=NOW, finished_at=NOW, status="finished")
        run.post_ids = ["_posts/2026-11-27-big-news.md"]
        session.add(run)
        session.flush()
        segment = Segment(run_id=run.id, post_ids=run.post_ids)
        session.add(segment)
        session.flush()
        deliveries = {}
        for subscriber_id in subscriber_ids:
            delivery = Delivery(
                run_id=run.id,
                segment_id=segment.id,
                subscriber_id=subscriber_id,
                status=D_SENT,
                attempts=1,
                message_id=(message_ids or {}).get(subscriber_id),
                sent_at=sent_at,
                updated_at=NOW,
            )
            session.add(delivery)
            session.flush()
            deliveries[subscriber_id] = delivery.id
        return SentRun(run.id, deliveries)
