"""What a subscriber receives: every digest (the default) or the ones chosen; their categories.

store.subscribers and store.preferences ─► here: the one way a Subscriber's digests change.
"""

from __future__ import annotations

from collections.abc import Iterable

from digest.errors import BadInputError, clipped
from digest.store.models import Subscriber, Subscription

# A subscriber's categories are printed in every digest they get: at most this many, this long.
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 100


def clean_digests(digests: Iterable[str]) -> list[str]:
    """Digest names stripped, empties and repeats dropped, sorted (names are checked by config)."""
    return sorted({name.strip() for name in digests if name.strip()})


def set_digests(sub: Subscriber, digests: list[str] | None) -> bool:
    """Put a subscriber on exactly `digests` (None: every digest); True if anything changed."""
    if digests is None:
        if sub.all_digests:
            return False
        sub.all_digests = True
        sub.subscriptions = []
        return True
    current = [s.digest for s in sub.subscriptions]
    if not sub.all_digests and sorted(current) == digests:
        return False
    sub.all_digests = False
    keep = [s for s in sub.subscriptions if s.digest in digests]
    sub.subscriptions = keep + [
        Subscription(digest=name) for name in digests if name not in current
    ]
    return True


def clean_categories(categories: Iterable[str]) -> list[str]:
    """Strip, drop empties, drop case-insensitive repeats (the first spelling wins).

    At most MAX_CATEGORIES, each at most MAX_CATEGORY_LENGTH characters: a subscriber's list
    is printed in every digest they get.
    """
    seen: set[str] = set()
    out: list[str] = []
    for raw in categories:
        category = raw.strip()
        if not category:
            continue
        if len(category) > MAX_CATEGORY_LENGTH:
            raise BadInputError(
                f"category {clipped(category, 40)!r} is longer than {MAX_CATEGORY_LENGTH} "
                "characters"
            )
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in category):
            raise BadInputError(f"category {category!r} contains a control character")
        if category.casefold() not in seen:
            seen.add(category.casefold())
            out.append(category)
            if len(out) > MAX_CATEGORIES:
                raise BadInputError(f"more than {MAX_CATEGORIES} categories for one subscriber")
    return out
