"""Why each post is in or out of a digest at a time, and of one subscriber's share.

selection stays pure: the posts, the load problems, the sent posts and the subscriber are
handed in; CONTRACT "Explain and local time" fixes the reasons and their order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from digest.selection.rules import in_categories
from digest.settings import DigestSettings
from digest.sources.post import Post

# A post's reasons, in the order they are judged (the first that applies is given).
NEW = "new"
BAD_DATE = "bad-date"
UNREADABLE = "unreadable"
DRAFT = "draft"
UNPUBLISHED = "unpublished"
FUTURE = "future"
OUTSIDE_LOOKBACK = "outside-lookback"
CATEGORY = "category"
ALREADY_SENT = "already-sent"
OVER_MAX_POSTS = "over-max-posts"
BELOW_MIN_POSTS = "below-min-posts"

# Why a post of the digest does not reach one subscriber, in the order they are judged.
NOT_ACTIVE = "status"
NOT_ON_DIGEST = "not-on-digest"
PAUSED = "paused"


@dataclass(frozen=True)
class Unread:
    """A post file that could not be read: where, and the reader's complaint."""

    path: str
    problem: str


@dataclass(frozen=True)
class Verdict:
    """One post of the site and why it is in or out of the digest (and of a share)."""

    path: str
    title: str
    date: datetime | None
    url: str
    reason: str
    detail: str
    for_subscriber: bool | None = None  # None: no subscriber was asked about
    subscriber_reason: str | None = None

    @property
    def included(self) -> bool:
        return self.reason == NEW

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "path": self.path,
            "title": self.title,
            "date": self.date.isoformat() if self.date else None,
            "url": self.url,
            "included": self.included,
            "reason": self.reason,
            "detail": self.detail,
        }
        if self.for_subscriber is not None:
            row["for_subscriber"] = self.for_subscriber
            row["subscriber_reason"] = self.subscriber_reason
        return row


@dataclass(frozen=True)
class Reader:
    """What explain needs to know of a subscriber (store.subscribers gives it)."""

    email: str
    status: str
    digests: tuple[str, ...]  # the digests they are on
    categories: tuple[str, ...]
    paused_until: datetime | None
    timezone: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "status": self.status,
            "digests": list(self.digests),
            "categories": list(self.categories),
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
            "timezone": self.timezone,
        }


def _names(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


def _judge(post: Post, digest: DigestSettings, as_of: datetime, sent: Mapping[str, int]) -> Verdict:
    def verdict(reason: str, detail: str) -> Verdict:
        return Verdict(post.id, post.title, post.date, post.url, reason, detail)

    if post.draft:
        return verdict(DRAFT, "a draft")
    if not post.published:
        return verdict(UNPUBLISHED, "published: false")
    if post.date > as_of:
        return verdict(FUTURE, f"dated after {as_of.isoformat()}")
    since = as_of - digest.lookback
    if post.date <= since:
        return verdict(
            OUTSIDE_LOOKBACK,
            f"dated at or before {since.isoformat()} (lookback_days {digest.lookback_days:g})",
        )
    if not in_categories(post, digest.categories):
        return verdict(
            CATEGORY,
            f"categories [{_names(post.categories)}] not in [{_names(digest.categories)}]",
        )
    if post.id in sent:
        return verdict(ALREADY_SENT, f"sent in run {sent[post.id]}")
    return verdict(NEW, "")


def explain_posts(
    posts: Iterable[Post],
    unread: Iterable[Unread],
    digest: DigestSettings,
    as_of: datetime,
    sent: Mapping[str, int],
) -> list[Verdict]:
    """Every post with its reason (CONTRACT "Explain"), newest first; unreadable ones first.

    `sent` maps the id of each post an earlier run of the digest included to that run's id.
    """
    out = [
        Verdict(
            u.path, "", None, "", BAD_DATE if "date" in u.problem.lower() else UNREADABLE, u.problem
        )
        for u in unread
    ]
    ordered = sorted(posts, key=lambda p: p.id)
    ordered.sort(key=lambda p: p.date, reverse=True)  # as select_new orders them
    judged = [_judge(post, digest, as_of, sent) for post in ordered]
    new = [i for i, v in enumerate(judged) if v.included]
    for i in new[digest.max_posts :]:
        judged[i] = replace(
            judged[i], reason=OVER_MAX_POSTS, detail=f"max_posts is {digest.max_posts}"
        )
    kept = new[: digest.max_posts]
    needed = max(digest.min_posts, 1)
    if kept and len(kept) < needed:
        for i in kept:
            judged[i] = replace(
                judged[i],
                reason=BELOW_MIN_POSTS,
                detail=f"{len(kept)} new, min_posts is {digest.min_posts}: they stay new",
            )
    return out + judged


def explain_share(
    verdicts: Sequence[Verdict],
    posts: Mapping[str, Post],
    reader: Reader,
    digest_name: str,
    as_of: datetime,
) -> list[Verdict]:
    """The verdicts with whether `reader` gets each post of the digest, and why not."""
    reason: str | None = None
    if reader.status != "active":
        reason = NOT_ACTIVE
    elif digest_name not in reader.digests:
        reason = NOT_ON_DIGEST
    elif reader.paused_until is not None and reader.paused_until > as_of:
        reason = PAUSED
    out = []
    for verdict in verdicts:
        if not verdict.included:
            out.append(replace(verdict, for_subscriber=False, subscriber_reason=None))
            continue
        why = reason
        post = posts[verdict.path]
        if why is None and reader.paused_until is not None and post.date < reader.paused_until:
            why = PAUSED  # dated inside the pause: what a pause skipped is never sent
        if why is None and not in_categories(post, reader.categories):
            why = CATEGORY
        out.append(replace(verdict, for_subscriber=why is None, subscriber_reason=why))
    return out
