"""A post as every source gives it: one immutable `Post`, and a load's posts and problems.

sources (jekyll, hugo, feed) ─► post ─► selection, render, delivery: none of them knows which
source a post came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from digest.errors import PostError
from digest.sources.cleaning import one_line, one_line_names, strip_controls, web_link


@dataclass(frozen=True)
class Post:
    """One published (or publishable) blog post, as Jekyll would build it."""

    id: str
    path: Path
    title: str
    date: datetime
    slug: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    author: str | None
    excerpt: str
    content: str
    image: str | None
    url: str
    published: bool
    draft: bool
    # The front matter with `_config.yml` defaults merged in (Liquid's `page`).
    front_matter: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Every reader's post leaves sources clean: no control characters in its texts (a
        page, a feed, a mail or a terminal shows them), and only web links: a `url` or
        `image` of another scheme (`javascript:`, `data:`) is dropped."""
        # Each value set again only when cleaning changed it (the cleaners return the very
        # object otherwise): most posts need nothing, and this runs for every post read.
        clean = {
            "title": one_line(self.title),
            "slug": one_line(self.slug),
            "categories": one_line_names(self.categories),
            "tags": one_line_names(self.tags),
            "author": one_line(self.author) if self.author else self.author,
            "excerpt": strip_controls(self.excerpt),
            "content": strip_controls(self.content),
            "url": web_link(self.url) or "",
            "image": web_link(self.image) if self.image else self.image,
        }
        fields = self.__dict__
        for name, value in clean.items():
            if value is not fields[name] and value != fields[name]:
                object.__setattr__(self, name, value)  # frozen: set once, while being made

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (`path` is Jekyll's `page.path`: relative to the site root)."""
        return {
            "id": self.id,
            "title": self.title,
            "date": self.date.isoformat(),
            "categories": list(self.categories),
            "tags": list(self.tags),
            "url": self.url,
            "path": self.id,
            "file": str(self.path),
            "slug": self.slug,
            "author": self.author,
            "excerpt": self.excerpt,
            "image": self.image,
            "published": self.published,
            "draft": self.draft,
        }


@dataclass(frozen=True)
class PostsLoad:
    """The posts that could be read, newest first, and the files that could not."""

    posts: tuple[Post, ...]
    problems: tuple[PostError, ...]


def distinct_categories(names: Iterable[str]) -> list[str]:
    """Names without case-insensitive repeats (the first spelling wins), sorted as people read."""
    seen: dict[str, str] = {}
    for name in names:
        if name.strip():
            seen.setdefault(name.strip().casefold(), name.strip())
    return sorted(seen.values(), key=str.casefold)
