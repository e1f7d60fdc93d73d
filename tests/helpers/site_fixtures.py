"""A small Jekyll site on disk (config.yaml + _posts) for delivery tests, and a few helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from digest.config import load_settings
from digest.settings import Settings
from digest.store import Store, open_store
from digest.store.subscribers import add_subscriber

SECRET = "test-secret-0123456789abcdef"
AS_OF = datetime.fromisoformat("2026-11-27T09:00:00+00:00")


# Stores opened through Site.store() during the current test; conftest disposes them.
OPENED_STORES: list[Store] = []


@dataclass
class Site:
    root: Path
    config_path: Path
    database_url: str
    smtp_port: int
    posts: list[str] = field(default_factory=list)

    def add_post(
        self,
        title: str,
        *,
        days_ago: float = 1,
        categories: Sequence[str] = (),
        as_of: datetime = AS_OF,
        body: str = "Some words about it.\n\nMore words.",
    ) -> str:
        """Write a post dated `days_ago` before `as_of`; returns its id (source path)."""
        date = as_of - timedelta(days=days_ago)
        slug = "-".join(title.lower().split())
        name = f"{date:%Y-%m-%d}-{slug}.md"
        front = {"title": title, "date": date.isoformat(), "categories": list(categories)}
        text = f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n{body}\n"
        (self.root / "_posts" / name).write_text(text, encoding="utf-8")
        post_id = f"_posts/{name}"
        self.posts.append(post_id)
        return post_id

    def settings(self) -> Settings:
        return load_settings(self.config_path)

    def store(self) -> Store:
        store = open_store(self.database_url)
        OPENED_STORES.append(store)  # disposed after the test (conftest), if the test did not
        return store


def make_site(
    root: Path,
    database_url: str,
    smtp_port: int,
    *,
    max_connections: int = 2,
    max_attempts: int = 4,
    retry_backoff: float = 0.05,
    digests: dict[str, Any] | None = None,
    secret: str = SECRET,
    extra: dict[str, Any] | None = None,
) -> Site:
    """A site folder with config.yaml and an empty _posts (add posts with Site.add_post)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "_posts").mkdir(exist_ok=True)
    config: dict[str, Any] = {
        "site": {"title": "Test Blog", "url": "https://blog.example.com", "timezone": "UTC"},
        "database": {"url": database_url},
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "timeout": 10,
            "max_connections": max_connections,
        },
        "email": {"from": "Test Blog <news@example.com>"},
        "web": {"base_url": "https://news.example.com", "secret": secret},
        "delivery": {"max_attempts": max_attempts, "retry_backoff": retry_backoff},
        "digests": digests
        or {"weekly": {"categories": [], "lookback_days": 7, "min_posts": 1, "max_posts": 20}},
    }
    for key, value in (extra or {}).items():
        config[key] = {**config.get(key, {}), **value}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return Site(root, path, database_url, smtp_port)


def add_subscribers(
    store: Store, people: Sequence[tuple[str, Sequence[str]]], *, status: str = "active"
) -> None:
    """(email, categories) pairs as subscribers with the given status."""
    for email, cats in people:
        add_subscriber(
            store, email, name=email.split("@")[0].title(), categories=cats, status=status
        )
