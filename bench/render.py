"""Benchmark: render + inline once per segment vs personalise once per subscriber, side by side.

Run: .venv/bin/python bench/render.py [--posts 20] [--segments 3] [--subscribers 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.config import load_settings
from digest.render.renderer import RenderedSegment, Renderer
from digest.sources.post import Post

TZ = ZoneInfo("Europe/London")
AS_OF = datetime(2025, 11, 27, 12, 0, tzinfo=TZ)
EXCERPT = (
    "The council met on Tuesday to discuss the new [cycle lanes](/lanes/) along the river, "
    "and after two hours of *debate* voted to extend the trial until spring.\n\n"
    "- Residents were split\n- Deliveries take longer\n"
)


def make_posts(folder: Path, count: int) -> list[Post]:
    """`count` posts in three categories, as load_posts would give them."""
    categories = ("News", "Movies", "Photos")
    return [
        Post(
            id=f"_posts/2025-11-{1 + i % 27:02d}-post-{i}.md",
            path=folder / f"post-{i}.md",
            title=f"Post {i}: the council votes on cycle lanes",
            date=datetime(2025, 11, 1 + i % 27, 9, 0, tzinfo=TZ),
            slug=f"post-{i}",
            categories=(categories[i % 3],),
            tags=(),
            author="Ada Lovelace",
            excerpt=EXCERPT,
            content=EXCERPT,
            image=f"https://blog.example.com/assets/{i}.jpg",
            url=f"https://blog.example.com/2025/11/post-{i}.html",
            published=True,
            draft=False,
        )
        for i in range(count)
    ]


def median_time(func: Callable[[], None], repeats: int) -> float:
    """Median seconds of `repeats` calls of func()."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "_posts").mkdir()
        (folder / "config.yaml").write_text(
            "site: {title: Bench Blog, url: 'https://blog.example.com'}\n"
            "email: {from: 'Bench <news@example.com>'}\n"
            "digests: {weekly: {max_posts: 500}}\n",
            encoding="utf-8",
        )
        settings = load_settings(folder / "config.yaml")
        digest = settings.digest("weekly")
        posts = make_posts(folder, args.posts)
        # Segment k gets every post but the k-th category's (segment 0: all posts).
        shares = [posts] + [
            [p for p in posts if p.categories[0] != posts[k % 3].categories[0]]
            for k in range(args.segments - 1)
        ]
        renderer = Renderer(settings)
        segments: list[RenderedSegment] = []

        def render_all() -> None:
            segments[:] = [renderer.render_segment(digest, s, as_of=AS_OF) for s in shares]

        def personalise_all() -> None:
            for i in range(args.subscribers):
                segment = segments[i % len(segments)]
                renderer.personalise(
                    segment,
                    name=f"Subscriber {i}",
                    email=f"user{i}@example.org",
                    unsubscribe_url=f"https://news.example.com/unsubscribe/token-{i:08d}",
                )

        render_all()  # warm up Jinja and the CSS parser cache
        runs_before = renderer.premailer_runs
        seg_time = median_time(render_all, args.repeats)
        per_segment = seg_time / len(shares)
        runs_per_repeat = (renderer.premailer_runs - runs_before) / args.repeats
        sub_time = median_time(personalise_all, args.repeats)
        per_subscriber = sub_time / args.subscribers
        size = max(len(s.html.encode()) for s in segments)

    print(
        f"{args.posts} posts, {len(shares)} segments, {args.subscribers} subscribers, "
        f"median of {args.repeats}; largest HTML {size:,} bytes"
    )
    print(f"{'':28}{'per item':>12}{'total':>12}")
    print(
        f"{'render+inline (per segment)':28}{per_segment * 1e3:>10.2f}ms"
        f"{seg_time * 1e3:>10.1f}ms   premailer runs/repeat: {runs_per_repeat:.0f}"
    )
    print(
        f"{'personalise (per subscriber)':28}{per_subscriber * 1e6:>10.1f}us"
        f"{sub_time * 1e3:>10.1f}ms"
    )
    print(f"ratio: one segment render costs {per_segment / per_subscriber:,.0f} personalisations")
    naive = per_segment * args.subscribers
    print(
        f"render per subscriber instead would take {naive:.1f}s vs "
        f"{seg_time + sub_time:.2f}s ({naive / (seg_time + sub_time):,.0f}x)"
    )


if __name__ == "__main__":
    main()
