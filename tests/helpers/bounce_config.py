"""A bounce-side config with subscribers, written to disk as a user would."""

from __future__ import annotations

from pathlib import Path

from digest.store import open_store
from digest.store.subscribers import add_subscriber
from tests.helpers.bounce_fixtures import (
    SUBSCRIBERS,
)

SECRET = "cli-bounce-secret-0123456789"


def write_config(folder: Path, database_url: str, extra: str = "") -> Path:
    (folder / "_posts").mkdir(exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(
        "site:\n"
        "  title: Test Blog\n"
        "  url: https://blog.example.com\n"
        "email:\n"
        '  from: "Test Blog <news@example.com>"\n'
        "  bounce_address: bounces@example.com\n"
        "web:\n"
        f"  secret: {SECRET}\n"
        "database:\n"
        f'  url: "{database_url}"\n' + extra,
        encoding="utf-8",
    )
    store = open_store(database_url)
    try:
        for address in SUBSCRIBERS:
            add_subscriber(store, address)
    finally:
        store.dispose()
    return path
