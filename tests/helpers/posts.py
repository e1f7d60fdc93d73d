"""Posts and a config written for render and language tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.config import load_settings
from digest.settings import Settings
from digest.sources.post import Post

TZ = ZoneInfo("Europe/London")


AS_OF = datetime(2025, 11, 27, 12, 0, tzinfo=TZ)


def write_config(folder: Path, extra: str = "", site_extra: str = "") -> Settings:
    """A real config file (and posts folder) on disk, loaded the way the CLI loads it."""
    (folder / "_posts").mkdir(exist_ok=True)
    (folder / "config.yaml").write_text(
        "site:\n"
        "  title: Example Blog\n"
        "  url: https://blog.example.com\n"
        "  timezone: Europe/London\n"
        f"{site_extra}"
        "email:\n"
        '  from: "Example Blog <news@example.com>"\n'
        "digests:\n"
        "  weekly: {}\n"
        "  movies:\n"
        "    categories: [Movies]\n"
        '    subject: "{{ site.title }} movies: {{ posts[0].title }}"\n'
        f"{extra}",
        encoding="utf-8",
    )
    return load_settings(folder / "config.yaml")


def make_post(
    n: int,
    *,
    title: str | None = None,
    excerpt: str = "A short *excerpt*.",
    image: str | None = None,
    categories: tuple[str, ...] = ("News",),
    author: str | None = "Ada Lovelace",
    day: int | None = None,
) -> Post:
    """A Post value as posts.load_posts would give it."""
    day = day if day is not None else 27 - (n % 20)
    slug = f"post-{n}"
    return Post(
        id=f"_posts/2025-11-{day:02d}-{slug}.md",
        path=Path(f"/site/_posts/2025-11-{day:02d}-{slug}.md"),
        title=title if title is not None else f"Post number {n}",
        date=datetime(2025, 11, day, 9, 30, tzinfo=TZ),
        slug=slug,
        categories=categories,
        tags=(),
        author=author,
        excerpt=excerpt,
        content=excerpt + "\n\nMore text.",
        image=image,
        url=f"https://blog.example.com/2025/11/{day:02d}/{slug}.html",
        published=True,
        draft=False,
    )


def write_post(root: Path, rel: str, front: str, body: str = "Intro.\n\nMore.\n") -> None:
    """A post file at root/rel with this front matter and body, as an author writes one."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front.strip()}\n---\n\n{body}", encoding="utf-8")
