"""Benchmark: per-subscriber message build, prebuilt MessageTemplate vs the EmailMessage reference.

Run: .venv/bin/python bench/message.py  (renders the example posts once, then builds N messages
both ways side by side and prints the cost per message and the ratio).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from digest.mail.message import MessageTemplate, build_message, serialise_message
from digest.render.renderer import Renderer
from digest.selection.rules import latest_posts
from digest.settings import Settings
from digest.sources.jekyll.reader import load_posts

ROOT = Path(__file__).resolve().parent.parent


def main(n: int = 2000) -> None:
    settings = Settings.model_validate(
        {
            "site": {
                "title": "Example Blog",
                "url": "https://blog.example.com",
                "posts_dir": ROOT / "examples" / "_posts",
                "timezone": "Europe/London",
            },
            "email": {
                "from": "Example Blog <news@example.com>",
                "unsubscribe_mailto": "leave@example.com",
            },
            "web": {"base_url": "https://news.example.com", "secret": "x" * 32},
            "digests": {"weekly": {}},
        }
    )
    digest = settings.digest("weekly")
    as_of = datetime.fromisoformat("2026-11-27T12:00:00+00:00")
    posts = latest_posts(load_posts(settings.site).posts, digest, as_of, 20)
    renderer = Renderer(settings)
    segment = renderer.render_segment(digest, posts, as_of=as_of)
    template = MessageTemplate(settings, digest, segment, renderer)
    recipients = [
        (f"reader{i}@example.org", "Zoë Ünïcode" if i % 2 else "Ada Lovelace") for i in range(n)
    ]
    url = "https://news.example.com/unsubscribe/"

    def fast_round() -> float:
        start = time.perf_counter()
        for email, name in recipients:
            template.build(to_email=email, to_name=name, unsubscribe_url=url + email)
        return (time.perf_counter() - start) / n

    m = max(n // 10, 1)

    def slow_round() -> float:
        start = time.perf_counter()
        for email, name in recipients[:m]:
            msg = build_message(
                settings,
                digest,
                segment,
                renderer,
                to_email=email,
                to_name=name,
                unsubscribe_url=url + email,
            )
            serialise_message(msg)
        return (time.perf_counter() - start) / m

    # Interleaved rounds, medians: the two paths see the same machine load.
    fasts, slows = [], []
    for _ in range(5):
        fasts.append(fast_round())
        slows.append(slow_round())
    fast, slow = statistics.median(fasts), statistics.median(slows)
    size = len(template.build(to_email="a@example.org", to_name="A", unsubscribe_url=url).data)

    print(f"posts: {len(posts)}, html {len(segment.html)} chars, message ~{size} bytes")
    print(f"MessageTemplate.build:          {fast * 1e6:8.1f} us/message (median of 5 x {n})")
    print(f"build_message + as_bytes (ref): {slow * 1e6:8.1f} us/message (median of 5 x {m})")
    print(f"ratio: {slow / fast:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
