"""The routes of `digest serve`: which handler answers which method and path, and the WSGI app.

web's one table: a request is matched here, its body read, its handler called, its errors drawn.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.errors import DatabaseError
from digest.smtp import SmtpSender, helo_name
from digest.store.signups import SignupLimits
from digest.tokens import check_secret
from digest.web.archive import (
    ARCHIVE_FEED,
    ARCHIVE_INDEX,
    ARCHIVE_RUN,
    archive_feed,
    archive_index,
    archive_page,
)
from digest.web.clients import trusted_networks
from digest.web.forms import MAX_BODY, Request, read_body, wants_json
from digest.web.handlers import (
    WebContext,
    confirm,
    confirm_page,
    healthz,
    signup_page,
    subscribe,
    unsubscribe,
    unsubscribe_page,
)
from digest.web.mailer import ConfirmationMailer
from digest.web.pages import (
    REASONS,
    SECURITY_HEADERS,
    HttpError,
    PageShell,
    Response,
    method_not_allowed,
)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from digest.config import Settings
    from digest.store import Store

# The web side's loggers keep the names they had before it became a package (they are in logs).
log = logging.getLogger("digest.web")
access_log = logging.getLogger("digest.web.access")

TOKEN = r"[A-Za-z0-9_.\-]{1,512}"
_TOKEN_IN_PATH = re.compile(rf"^(/(?:unsubscribe|confirm)/)({TOKEN})")
_TOKEN_IN_TEXT = re.compile(rf"(/(?:unsubscribe|confirm)/)({TOKEN})")

Handler = Callable[[WebContext, Request], Response]


@dataclass(frozen=True)
class Route:
    """Requests with one of `methods` to a path matching `pattern` go to `handler`."""

    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    handler: Handler


_UNSUBSCRIBE = re.compile(rf"^/unsubscribe/(?P<token>{TOKEN})/?$")
_CONFIRM = re.compile(rf"^/confirm/(?P<token>{TOKEN})/?$")
_SUBSCRIBE = re.compile(r"^/subscribe/?$")
_HEALTHZ = re.compile(r"^/healthz$")

# A GET never changes anything (mail link scanners prefetch every URL); every change is a POST.
ROUTES = (
    Route(("GET", "HEAD"), _UNSUBSCRIBE, unsubscribe_page),
    Route(("POST",), _UNSUBSCRIBE, unsubscribe),
    Route(("GET", "HEAD"), _CONFIRM, confirm_page),
    Route(("POST",), _CONFIRM, confirm),
    Route(("GET", "HEAD"), _SUBSCRIBE, signup_page),
    Route(("POST",), _SUBSCRIBE, subscribe),
    Route(("GET", "HEAD"), _HEALTHZ, healthz),
    Route(("GET", "HEAD"), ARCHIVE_INDEX, archive_index),
    Route(("GET", "HEAD"), ARCHIVE_RUN, archive_page),
    Route(("GET", "HEAD"), ARCHIVE_FEED, archive_feed),
)


def short_path(path: str) -> str:
    """The path with any token cut to its first 8 characters, for logs."""
    return _TOKEN_IN_PATH.sub(_cut, path)


def hide_tokens(text: str) -> str:
    """Any text (a log line) with each token in it cut to its first 8 characters."""
    return _TOKEN_IN_TEXT.sub(_cut, text)


def _cut(match: re.Match[str]) -> str:
    token = match.group(2)
    return match.group(1) + (token[:8] + "…" if len(token) > 8 else token)


class DigestWebApp:
    """The WSGI application behind `digest serve` (see make_app).

    With mailer_thread=True the confirmation mailer starts with the first request in each
    process (so it also runs under a pre-forking server); `serve` starts it at once.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        max_body: int = MAX_BODY,
        sender_factory: Callable[[], SmtpSender] | None = None,
        mailer_thread: bool = True,
    ) -> None:
        self.max_body = max_body
        self.mailer_thread = mailer_thread
        web = settings.web
        limits = SignupLimits(web.signup_resend_after, web.signups_per_ip_per_hour)
        mailer = ConfirmationMailer(
            settings,
            store,
            sender_factory
            or (
                lambda: SmtpSender(
                    settings.smtp, local_hostname=helo_name(settings.email.from_address)
                )
            ),
            limits=limits,
        )
        self.context = WebContext(
            settings=settings,
            store=store,
            secret=check_secret(web.secret.get_secret_value()),
            shell=PageShell(settings.site.title, settings.site.root_url),
            mailer=mailer,
            trusted_proxies=trusted_networks(web.trusted_proxies),
        )

    @property
    def mailer(self) -> ConfirmationMailer:
        """The confirmation mailer (its queue is in the database)."""
        return self.context.mailer

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        if self.mailer_thread and not self.context.mailer.running:
            self.context.mailer.start()
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "") or "/")
        json_wanted = wants_json(environ)
        shell = self.context.shell
        try:
            response = self.dispatch(environ, method, path, json_wanted)
        except HttpError as exc:
            response = shell.error(exc, json_wanted)
        except DatabaseError as exc:
            log.error("%s %s: %s", method, short_path(path), exc.message)
            response = shell.error(
                HttpError(503, "Try again later", "The service is unavailable right now."),
                json_wanted,
            )
        except Exception:
            # The one catch-all: a bug must not show a traceback to the visitor; it is logged.
            log.exception("%s %s failed", method, short_path(path))
            response = shell.error(
                HttpError(500, "Something went wrong", "Please try again later."), json_wanted
            )
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *SECURITY_HEADERS,
            *response.headers,
        ]
        start_response(f"{response.status} {REASONS.get(response.status, '')}".strip(), headers)
        access_log.info(
            "%s %s %s %d %d %.1fms",
            environ.get("REMOTE_ADDR", "-"),
            method,
            short_path(path),
            response.status,
            len(response.body),
            (time.perf_counter() - started) * 1000,
        )
        return [b""] if method == "HEAD" else [response.body]

    def dispatch(
        self, environ: WSGIEnvironment, method: str, path: str, json_wanted: bool
    ) -> Response:
        """Route a request to its handler; HttpError for 404/405."""
        allowed: list[str] = []
        for route in ROUTES:
            match = route.pattern.match(path)
            if match is None:
                continue
            if method not in route.methods:
                allowed.extend(route.methods)
                continue
            body = read_body(environ, self.max_body) if method == "POST" else b""
            token = match.groupdict().get("token") or ""
            request = Request(environ, method, body, json_wanted, token)
            return route.handler(self.context, request)
        if allowed:
            raise method_not_allowed(allowed)
        raise HttpError(404, "Not found", "There is no page at this address.")
