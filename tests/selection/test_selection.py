"""selection.py: which posts are new for a digest at a time, shares and segments."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.selection.rules import is_published, latest_posts, select_new, share_for
from digest.settings import DigestSettings
from digest.sources.post import Post

TZ = ZoneInfo("Europe/London")
AS_OF = datetime(2025, 11, 27, 9, 0, tzinfo=TZ)


def post(slug: str, date: datetime, *categories: str, **changes: object) -> Post:
    base = Post(
        id=f"_posts/{date:%Y-%m-%d}-{slug}.md",
        path=Path(f"/site/_posts/{date:%Y-%m-%d}-{slug}.md"),
        title=slug.title(),
        date=date,
        slug=slug,
        categories=tuple(categories),
        tags=(),
        author=None,
        excerpt="",
        content="",
        image=None,
        url=f"https://blog.example.com/{slug}.html",
        published=True,
        draft=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def digest(**values: object) -> DigestSettings:
    return DigestSettings.model_validate({"name": "weekly", **values})


def days_ago(n: float) -> datetime:
    return AS_OF - timedelta(days=n)


def test_is_published() -> None:
    assert is_published(post("a", days_ago(1)), AS_OF)
    assert is_published(post("a", AS_OF), AS_OF)
    assert not is_published(post("a", AS_OF + timedelta(seconds=1)), AS_OF)
    assert not is_published(post("a", days_ago(1), published=False), AS_OF)
    assert not is_published(post("a", days_ago(1), draft=True), AS_OF)


def test_new_posts_newest_first() -> None:
    posts = [post("old", days_ago(5)), post("new", days_ago(1)), post("mid", days_ago(3))]
    assert [p.slug for p in select_new(posts, digest(), AS_OF, set())] == ["new", "mid", "old"]


def test_ties_are_ordered_by_id() -> None:
    posts = [post("b", days_ago(1)), post("a", days_ago(1))]
    assert [p.slug for p in select_new(posts, digest(), AS_OF, [])] == ["a", "b"]


def test_unpublished_drafts_and_future_are_not_new() -> None:
    posts = [
        post("hidden", days_ago(1), published=False),
        post("draft", days_ago(1), draft=True),
        post("future", AS_OF + timedelta(minutes=1)),
        post("ok", days_ago(1)),
    ]
    assert [p.slug for p in select_new(posts, digest(), AS_OF, set())] == ["ok"]


def test_boundaries_as_of_included_lookback_start_excluded() -> None:
    posts = [
        post("now", AS_OF),
        post("edge", days_ago(7)),
        post("inside", days_ago(7) + timedelta(seconds=1)),
    ]
    chosen = select_new(posts, digest(lookback_days=7), AS_OF, set())
    assert [p.slug for p in chosen] == ["now", "inside"]


def test_lookback_days_is_used() -> None:
    posts = [post("a", days_ago(2)), post("b", days_ago(0.5))]
    assert [p.slug for p in select_new(posts, digest(lookback_days=1), AS_OF, set())] == ["b"]


def test_as_of_in_another_zone_is_the_same_instant() -> None:
    tokyo_as_of = AS_OF.astimezone(ZoneInfo("Asia/Tokyo"))
    posts = [post("now", AS_OF), post("later", AS_OF + timedelta(hours=1))]
    assert [p.slug for p in select_new(posts, digest(), tokyo_as_of, set())] == ["now"]


def test_categories_case_insensitive_and_empty_means_all() -> None:
    posts = [
        post("news", days_ago(1), "News"),
        post("both", days_ago(2), "Sport", "NEWS"),
        post("sport", days_ago(3), "Sport"),
        post("none", days_ago(4)),
    ]
    only_news = select_new(posts, digest(categories=["news"]), AS_OF, set())
    assert [p.slug for p in only_news] == ["news", "both"]
    everything = select_new(posts, digest(categories=[]), AS_OF, set())
    assert [p.slug for p in everything] == ["news", "both", "sport", "none"]


def test_sent_ids_are_not_new() -> None:
    posts = [post("a", days_ago(1)), post("b", days_ago(2))]
    chosen = select_new(posts, digest(), AS_OF, {"_posts/2025-11-26-a.md"})
    assert [p.slug for p in chosen] == ["b"]
    chosen = select_new(posts, digest(), AS_OF, ("_posts/2025-11-25-b.md",))
    assert [p.slug for p in chosen] == ["a"]


def test_capped_at_max_posts_keeping_the_newest() -> None:
    posts = [post(f"p{i}", days_ago(i / 10)) for i in range(6)]
    chosen = select_new(posts, digest(max_posts=3), AS_OF, set())
    assert [p.slug for p in chosen] == ["p0", "p1", "p2"]


def test_share_for() -> None:
    posts = [post("a", days_ago(1), "News"), post("b", days_ago(2), "Sport")]
    assert share_for(posts, []) == posts
    assert [p.slug for p in share_for(posts, ["SPORT"])] == ["b"]
    assert share_for(posts, ["Cooking"]) == []


def test_latest_posts_ignores_lookback_and_sent_but_not_publication() -> None:
    posts = [
        post("ancient", days_ago(400), "News"),
        post("older", days_ago(500), "News"),
        post("sport", days_ago(1), "Sport"),
        post("future", AS_OF + timedelta(days=1), "News"),
        post("hidden", days_ago(2), "News", published=False),
    ]
    chosen = latest_posts(posts, digest(categories=["news"]), AS_OF, 5)
    assert [p.slug for p in chosen] == ["ancient", "older"]
    assert [p.slug for p in latest_posts(posts, digest(), AS_OF, 1)] == ["sport"]
