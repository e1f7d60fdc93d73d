"""Are the posts live? Fetch each post's URL and images (and every link of the email) before a run.

selection ─► delivery.links ─► run: `digest check`, and `digests.X.check_links` (warn, hold the
run, or skip the dead posts, which stay new). httpx lives here: bounded threads, timeouts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from digest.errors import DigestError
from digest.render.renderer import Renderer

if TYPE_CHECKING:
    from digest.settings import DigestSettings, Settings
    from digest.sources.post import Post
    from digest.store import Store

log = logging.getLogger(__name__)

POST, IMAGE, LINK = "post", "image", "link"
# At most this many requests at once, each answered within TIMEOUT seconds (or `error`).
CONCURRENCY = 8
TIMEOUT = 10.0
_IMG_SRC = re.compile(r"<img\b[^>]*?\bsrc=\"(https?://[^\"]+)\"", re.IGNORECASE)
_HREF = re.compile(r"<a\b[^>]*?\bhref=\"(https?://[^\"]+)\"", re.IGNORECASE)


class LinksHeldError(DigestError):
    """check_links: hold, and a post's URL does not answer: no run was started (exit 1)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


@dataclass(frozen=True)
class Target:
    url: str
    kind: str  # post | image | link
    post: str | None  # the post's id (source path); None for a link of the email


@dataclass(frozen=True)
class LinkResult:
    """One URL fetched: its HTTP status (after redirects) or `error`, and whether it is live."""

    url: str
    kind: str
    post: str | None
    status: int | str
    ok: bool
    detail: str = ""  # why it is `error`: timeout, refused, ...

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kind": self.kind,
            "post": self.post,
            "status": self.status,
            "ok": self.ok,
        }

    def describe(self) -> str:
        """`404`, or `error (timed out)`."""
        return f"{self.status} ({self.detail})" if self.detail else str(self.status)


def post_targets(renderer: Renderer, posts: Iterable[Post]) -> list[Target]:
    """Each post's own URL and its images (the card image and those in its excerpt)."""
    targets = []
    for post in posts:
        targets.append(Target(post.url, POST, post.id))
        images = [post.image] if post.image else []
        images += _IMG_SRC.findall(renderer.excerpts.to_html(post.excerpt))
        targets += [Target(url, IMAGE, post.id) for url in dict.fromkeys(images)]
    return targets


def email_links(html: str, known: Iterable[str]) -> list[Target]:
    """Every http(s) link of a rendered email not already among `known` URLs."""
    seen = set(known)
    out = []
    for url in dict.fromkeys(_HREF.findall(html)):
        if url not in seen:
            out.append(Target(url.replace("&amp;", "&"), LINK, None))
    return out


def fetch_targets(
    targets: Sequence[Target], *, concurrency: int = CONCURRENCY, timeout: float = TIMEOUT
) -> list[LinkResult]:
    """Fetch each URL once (HEAD, then GET when HEAD is refused), `concurrency` at a time."""
    import httpx

    statuses: dict[str, tuple[int | str, str]] = {}
    headers = {"User-Agent": "digest link check (+https://github.com/)"}

    def fetch(client: httpx.Client, url: str) -> tuple[int | str, str]:
        try:
            reply = client.head(url)
            if reply.status_code >= 400:  # some servers refuse HEAD; ask as a browser does
                with client.stream("GET", url) as streamed:
                    return streamed.status_code, ""
            return reply.status_code, ""
        except httpx.TimeoutException:
            return "error", f"no answer within {timeout:g} s"
        except (httpx.HTTPError, ValueError) as exc:
            return "error", type(exc).__name__ if not str(exc) else str(exc)[:120]

    urls = list(dict.fromkeys(t.url for t in targets))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with (
        httpx.Client(
            follow_redirects=True, timeout=timeout, limits=limits, headers=headers
        ) as client,
        ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="digest-check") as pool,
    ):
        for url, answer in zip(urls, pool.map(lambda u: fetch(client, u), urls), strict=True):
            statuses[url] = answer
    results = []
    for t in targets:
        status, detail = statuses[t.url]
        ok = isinstance(status, int) and 200 <= status < 400
        results.append(LinkResult(t.url, t.kind, t.post, status, ok, detail))
    return results


def check_posts(
    settings: Settings,
    digest: DigestSettings,
    posts: Sequence[Post],
    *,
    as_of: datetime,
    all_links: bool = False,
    renderer: Renderer | None = None,
) -> list[LinkResult]:
    """Fetch the posts' URLs and images (and with all_links every link of the email)."""
    renderer = renderer or Renderer(settings)
    targets = post_targets(renderer, posts)
    if all_links and posts:
        segment = renderer.render_segment(digest, posts, as_of=as_of)
        targets += email_links(segment.html, (t.url for t in targets))
    return fetch_targets(targets)


def dead_posts(results: Iterable[LinkResult]) -> dict[str, LinkResult]:
    """The posts whose own URL is not live, by post id."""
    return {r.post: r for r in results if r.kind == POST and not r.ok and r.post}


def apply_check_links(
    settings: Settings,
    digest: DigestSettings,
    posts: Sequence[Post],
    *,
    as_of: datetime,
    renderer: Renderer | None = None,
) -> list[Post]:
    """`check_links` before a run: the posts to send (all, or without the dead ones for skip).

    hold: LinksHeldError naming the first URL that is not live (no run starts); warn and
    skip: one warning per URL that is not live.
    """
    mode = digest.check_links
    if mode == "off" or not posts:
        return list(posts)
    results = check_posts(settings, digest, posts, as_of=as_of, renderer=renderer)
    dead = dead_posts(results)
    if mode == "hold" and dead:
        first = next(iter(dead.values()))
        more = f" (and {len(dead) - 1} more)" if len(dead) > 1 else ""
        raise LinksHeldError(
            f"{digest.name}: held: {first.url} answers {first.describe()}{more}; "
            "no run started (check_links: hold)",
            url=first.url,
        )
    for r in results:
        if r.ok:
            continue
        if r.kind == POST and mode == "skip":
            log.warning(
                "%s: %s answers %s; post left new for the next run",
                digest.name,
                r.url,
                r.describe(),
            )
        else:
            log.warning(
                "%s: %s (%s of %s) answers %s", digest.name, r.url, r.kind, r.post, r.describe()
            )
    if mode == "skip":
        return [p for p in posts if p.id not in dead]
    return list(posts)


def check_digest(
    settings: Settings, store: Store, name: str, *, as_of: datetime, all_links: bool = False
) -> list[LinkResult]:
    """`digest check`: the posts digest `name` would send at `as_of`, fetched."""
    from digest.selection.newposts import new_posts, posts_by_id

    digest = settings.digest(name)
    posts = new_posts(
        store, digest, posts_by_id(settings, as_of=as_of, store=store).values(), as_of
    )
    return check_posts(settings, digest, posts, as_of=as_of, all_links=all_links)
