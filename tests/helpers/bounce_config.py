"""A bounce-side config with subscribers, written to disk as a user would."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from digest.store import open_store
from digest.store.subscribers import add_subscriber
from tests.helpers.bounce_fixtures import SUBSCRIBERS, sent_run

SECRET = "cli-bounce-secret-0123456789"


def write_config(folder: Path, database_url: str, extra: str = "", *, verp: bool = False) -> Path:
    """The config; every subscriber was sent one message just now (a report without VERP
    acts only on a recent delivery). `verp`: email.bounce_address is set."""
    (folder / "_posts").mkdir(exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(
        "site:\n"
        "  title: Test Blog\n"
        "  url: https://blog.example.com\n"
        "email:\n"
        '  from: "Test Blog <news@example.com>"\n'
        + ("  bounce_address: bounces@example.com\n" if verp else "")
        + "web:\n"
        f"  secret: {SECRET}\n"
        "database:\n"
        f'  url: "{database_url}"\n' + extra,
        encoding="utf-8",
    )
    store = open_store(database_url)
    try:
        ids = [add_subscriber(store, address)[0].id for address in SUBSCRIBERS]
        sent_run(store, ids, sent_at=datetime.now(UTC))
    finally:
        store.dispose()
    return path
