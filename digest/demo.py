"""`digest demo`: the whole job end to end in the current folder, with nothing configured.

Copies the bundled example posts and a config, runs a capture SMTP server on loopback, adds
example subscribers and sends the weekly digest through real SMTP into demo-outbox/.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from importlib import resources
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from digest.config import load_settings
from digest.delivery.run import send_digest
from digest.errors import BadInputError
from digest.render.renderer import Renderer
from digest.selection.rules import select_new
from digest.sources import open_source
from digest.store import open_store
from digest.store.models import UNSUBSCRIBED
from digest.store.subscribers import add_subscriber

MARKER = "# written by `digest demo`"
_FILE_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})-")
_FRONT_DATE = re.compile(r"^(date:\s*[\"']?)(\d{4}-\d{2}-\d{2})", re.MULTILINE)

DEMO_SUBSCRIBERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ana@example.com", "Ana Lima", ()),
    ("ben@example.com", "Ben Carter", ("Engineering",)),
    ("chloe@example.com", "Chloé Martin", ("Culture",)),
    ("dan@example.com", "Dan Novak", ("News", "Weather")),
    ("erin@example.com", "Erin Walsh", ("Sport",)),
)
DEMO_UNSUBSCRIBED = ("finn@example.com", "Finn Byrne")


def bundled_examples() -> Path:
    """The example posts: inside the wheel, or the repo's examples/ in a source checkout."""
    packaged = resources.files("digest") / "examples" / "_posts"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "examples" / "_posts"


def free_port() -> int:
    """A free TCP port on loopback (aiosmtpd's port=0 does not work)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CaptureHandler:
    """An SMTP handler that writes each message it receives as an .eml file."""

    outbox: Path
    received: list[tuple[str, str, Path]] = field(default_factory=list)  # (to, subject, file)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        message = message_from_bytes(data, policy=policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                number = len(self.received) + 1
                safe = re.sub(r"[^A-Za-z0-9@._-]", "_", rcpt)
                path = self.outbox / f"{number:03d}-{safe}.eml"
                path.write_bytes(data)
                self.received.append((rcpt, str(message.get("Subject", "")), path))
        return "250 OK: captured by digest demo"


def _file_date(path: Path) -> date | None:
    found = _FILE_DATE.match(path.name)
    return date.fromisoformat(found.group(1)) if found else None


def copy_posts(source: Path, target: Path, today: date) -> list[Path]:
    """Copy the example posts, moved in time so the newest is dated yesterday."""
    dated = sorted((d, p) for p in source.iterdir() if (d := _file_date(p)) is not None)
    shift = (today - timedelta(days=1)) - max(d for d, _ in dated)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for old, path in dated:
        text = _FRONT_DATE.sub(
            lambda m: m.group(1) + (date.fromisoformat(m.group(2)) + shift).isoformat(),
            path.read_text(encoding="utf-8"),
            count=1,
        )
        out = target / _FILE_DATE.sub(f"{(old + shift).isoformat()}-", path.name)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


def demo_config(port: int, secret: str) -> str:
    return f"""{MARKER}: a demo site; edit freely, or copy config.example.yaml for the real thing.
site:
  title: The Example Gazette
  url: https://blog.example.com
  posts_dir: _posts
  timezone: Europe/London
database:
  url: sqlite:///digest.db
smtp:
  host: 127.0.0.1
  port: {port}              # the demo's capture server; it only runs during `digest demo`
  security: none
  max_connections: 2
email:
  from: "The Example Gazette <news@example.com>"
  unsubscribe_mailto: unsubscribe@example.com
web:
  base_url: http://localhost:8080
  secret: ${{DIGEST_SECRET:-{secret}}}
delivery:
  max_attempts: 3
  retry_backoff: 1
digests:
  weekly:
    subject: >-
      {{{{ site.title }}}}: {{{{ posts|length }}}}
      new post{{{{ 's' if posts|length != 1 }}}} this week
    schedule: "0 9 * * mon"
    categories: []
    max_posts: 20
    min_posts: 1
    lookback_days: 7
"""


@dataclass
class DemoResult:
    folder: Path
    posts_copied: int
    config: Path
    outbox: Path
    preview: Path
    received: list[tuple[str, str, Path]]
    reports: list[Any]
    skipped: list[str]  # subscribers who got no email, with why


def prepare_folder(folder: Path) -> None:
    """Refuse to overwrite a real config; clear what an earlier demo left."""
    config = folder / "config.yaml"
    if config.exists() and MARKER not in config.read_text(encoding="utf-8", errors="replace"):
        raise BadInputError(
            f"{config} exists and was not written by `digest demo`; run the demo in an empty folder"
        )
    for name in ("digest.db", "digest.db-wal", "digest.db-shm", "preview.html"):
        (folder / name).unlink(missing_ok=True)
    for name in ("demo-outbox", "_posts"):
        if (folder / name).is_dir() and (folder / "config.yaml").exists():
            shutil.rmtree(folder / name)


def run_demo(folder: Path, *, now: datetime | None = None) -> DemoResult:
    """Set up the demo site in `folder`, send the weekly digest for real, capture it."""
    folder = folder.resolve()
    prepare_folder(folder)
    when = (now or datetime.now().astimezone()).replace(microsecond=0)
    posts = copy_posts(bundled_examples(), folder / "_posts", when.date())
    outbox = folder / "demo-outbox"
    outbox.mkdir(exist_ok=True)

    handler = CaptureHandler(outbox)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    config = folder / "config.yaml"
    config.write_text(demo_config(port, secrets.token_urlsafe(24)), encoding="utf-8")
    settings = load_settings(config, environ={})
    store = open_store(settings.database.url)
    try:
        for email, name, categories in DEMO_SUBSCRIBERS:
            add_subscriber(store, email, name=name, categories=list(categories))
        add_subscriber(store, DEMO_UNSUBSCRIBED[0], name=DEMO_UNSUBSCRIBED[1], status=UNSUBSCRIBED)

        weekly = settings.digest("weekly")
        as_of = when.astimezone(settings.site.tz)
        loaded = open_source(settings.site).load(as_of=as_of)
        new_posts = select_new(loaded.posts, weekly, as_of, set())
        renderer = Renderer(settings)
        segment = renderer.render_segment(weekly, new_posts, as_of=as_of)
        html, _text = renderer.personalise(
            segment,
            name="Reader",
            email="reader@example.com",
            unsubscribe_url=f"{settings.web.base_url}/unsubscribe/preview",
        )
        preview = folder / "preview.html"
        preview.write_text(html, encoding="utf-8")

        controller.start()
        try:
            reports = send_digest(settings, store, "weekly", as_of=as_of)
        finally:
            controller.stop()
    finally:
        store.dispose()

    got = {rcpt.lower() for rcpt, _s, _p in handler.received}
    skipped = [
        f"{email} (no new posts in {', '.join(cats)})"
        for email, _n, cats in DEMO_SUBSCRIBERS
        if email not in got and cats
    ]
    skipped.append(f"{DEMO_UNSUBSCRIBED[0]} (unsubscribed: never mailed)")
    return DemoResult(
        folder=folder,
        posts_copied=len(posts),
        config=config,
        outbox=outbox,
        preview=preview,
        received=handler.received,
        reports=reports,
        skipped=skipped,
    )
