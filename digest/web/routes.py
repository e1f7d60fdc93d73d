"""The routes of `digest serve` on Flask: which handler answers which method and path.

web's one table: Flask (werkzeug) matches the request and parses its form; the handler gets a
Request and the WebContext; every error, ours or the framework's, is drawn as one of our pages.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import flask
import jinja2
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter

from digest.bounces.setup import bounce_policy, webhook_settings
from digest.bounces.sns import SnsVerifier
from digest.bounces.webhooks import PROVIDERS, Webhooks
from digest.errors import DatabaseError
from digest.i18n import N_, translations
from digest.render.renderer import bundled_templates_dir
from digest.smtp.client import SmtpSender, helo_name
from digest.sources import open_source
from digest.store.signups import SignupLimits
from digest.tokens import check_secret
from digest.web.archive import DIGEST_NAME, archive_feed, archive_index, archive_page
from digest.web.clients import trusted_networks
from digest.web.context import WebContext
from digest.web.forms import MAX_BODY, Request, read_fields, read_raw_body, wants_json
from digest.web.handlers import (
    confirm,
    confirm_page,
    healthz,
    root,
    signup_page,
    subscribe,
    unsubscribe,
    unsubscribe_page,
)
from digest.web.mailer import ConfirmationMailer
from digest.web.pages import (
    SECURITY_HEADERS,
    HttpError,
    PageShell,
    Response,
    error_code,
    method_not_allowed,
    not_found,
)
from digest.web.preferences import preferences_page, save_preferences
from digest.web.site_categories import SiteCategories
from digest.web.webhooks import WEBHOOK_MAX_BODY, relay_webhook

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from digest.settings import Settings
    from digest.store import Store

# The web side's loggers keep the names they had before it became a package (they are in logs).
log = logging.getLogger("digest.web")
access_log = logging.getLogger("digest.web.access")

# `=` too: a link copied out of a quoted-printable mail can keep a soft break's `=`; such a
# token then fails its signature ("incomplete link"), not the route ("not found").
TOKEN = r"[A-Za-z0-9_.\-=]{1,512}"
_TOKEN_IN_PATH = re.compile(rf"^(/(?:unsubscribe|confirm|preferences)/)({TOKEN})")
# A relay's secret in a webhook URL (Postmark) is never logged, not even in part.
_SECRET_IN_PATH = re.compile(rf"(/webhooks/[a-z]{{1,20}}/){TOKEN}")

Handler = Callable[[WebContext, Request], Response]


@dataclass(frozen=True)
class Route:
    """Requests with one of `methods` to a path matching `rule` go to `handler` (GET: HEAD too).

    A rule written with a trailing slash answers with and without it (no redirect).
    """

    rule: str
    methods: tuple[str, ...]
    handler: Handler
    # A relay webhook takes its body whole and bigger than a form; others get form fields.
    raw_body_limit: int | None = None


# A GET never changes anything (mail link scanners prefetch every URL); every change is a POST.
ROUTES = (
    Route("/", ("GET",), root),
    Route("/unsubscribe/<token:token>/", ("GET",), unsubscribe_page),
    Route("/unsubscribe/<token:token>/", ("POST",), unsubscribe),
    Route("/confirm/<token:token>/", ("GET",), confirm_page),
    Route("/confirm/<token:token>/", ("POST",), confirm),
    Route("/preferences/<token:token>/", ("GET",), preferences_page),
    Route("/preferences/<token:token>/", ("POST",), save_preferences),
    Route("/subscribe/", ("GET",), signup_page),
    Route("/subscribe/", ("POST",), subscribe),
    Route("/healthz", ("GET",), healthz),
    Route("/archive/", ("GET",), archive_index),
    Route("/archive/<digest_name:digest>/<int(max=2147483647):run>/", ("GET",), archive_page),
    Route("/archive/<digest_name:digest>.atom", ("GET",), archive_feed),
    Route("/webhooks/<provider>", ("POST",), relay_webhook, WEBHOOK_MAX_BODY),
    Route("/webhooks/<provider>/<token:secret>", ("POST",), relay_webhook, WEBHOOK_MAX_BODY),
)


class TokenConverter(BaseConverter):
    """A signed token in a path: URL-safe base64 and dots, at most 512 characters."""

    regex = TOKEN


class DigestNameConverter(BaseConverter):
    """A digest's name in an archive path: letters, digits, `-` and `_` (no dot)."""

    regex = DIGEST_NAME


def short_path(path: str) -> str:
    """The path with any token cut to its first 8 characters (a secret: hidden), for logs."""
    return _SECRET_IN_PATH.sub(r"\1***", _TOKEN_IN_PATH.sub(_cut, path))


def _cut(match: re.Match[str]) -> str:
    token = match.group(2)
    return match.group(1) + (token[:8] + "…" if len(token) > 8 else token)


def template_search_path(settings: Settings) -> list[str]:
    """Where page templates are looked up: templates_dir first, then the bundled templates."""
    folders = [bundled_templates_dir()]
    if settings.templates_dir is not None:
        folders.insert(0, settings.templates_dir)
    return [str(folder) for folder in folders]


def _webhooks(settings: Settings, store: Store, sns: SnsVerifier | None) -> Webhooks | None:
    """The relay webhooks when bounces.webhooks names any relay; None answers 404."""
    hooks = webhook_settings(settings)
    if not any(hooks.enabled(provider) for provider in PROVIDERS):
        return None
    return Webhooks(store, bounce_policy(settings), hooks, sns=sns)


class DigestWebApp(flask.Flask):
    """The WSGI application behind `digest serve` (see make_app).

    With mailer_thread=True the confirmation mailer and the categories' refresher start with
    the first request in each process (so they also run under a pre-forking server); `serve`
    starts them at once. The categories are first read here, outside any request.
    """

    jinja_options = {  # noqa: RUF012 (Flask reads the class attribute)
        "undefined": jinja2.StrictUndefined,
        "extensions": ["jinja2.ext.i18n"],
        "trim_blocks": True,
        "lstrip_blocks": True,
    }

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        max_body: int = MAX_BODY,
        sender_factory: Callable[[], SmtpSender] | None = None,
        mailer_thread: bool = True,
        sns: SnsVerifier | None = None,
    ) -> None:
        super().__init__("digest.web", static_folder=None, template_folder=None)
        self.max_body = max_body
        self.mailer_thread = mailer_thread
        web = settings.web
        secret = check_secret(web.secret.get_secret_value())
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
        self.jinja_loader = jinja2.FileSystemLoader(template_search_path(settings))
        # Page strings go through gettext, in the site's language (English without a catalog).
        self.jinja_env.install_gettext_translations(  # type: ignore[attr-defined]
            translations(settings.site.lang), newstyle=True
        )
        # Read here, outside any request; then by the refresher thread (started with the mailer).
        categories = SiteCategories(open_source(settings.site))
        categories.refresh()
        self.context = WebContext(
            settings=settings,
            store=store,
            secret=secret,
            shell=PageShell(
                settings.site.title, settings.site.root_url, self.jinja_env, settings.site.lang
            ),
            mailer=mailer,
            trusted_proxies=trusted_networks(web.trusted_proxies),
            categories=categories,
            webhooks=_webhooks(settings, store, sns),
        )
        self.url_map.merge_slashes = False
        self.url_map.converters["token"] = TokenConverter
        self.url_map.converters["digest_name"] = DigestNameConverter
        for route in ROUTES:
            view = self._view(route)
            # Both spellings as rules of their own: werkzeug's lenient slash matching would
            # answer a wrong method with 404 instead of 405.
            rules = {route.rule, route.rule.rstrip("/") or "/"}
            for rule in sorted(rules):
                self.add_url_rule(
                    rule,
                    # One endpoint per route: a handler may serve two (a webhook, with and
                    # without its secret in the path).
                    endpoint=f"{route.handler.__name__} {route.rule}",
                    view_func=view,
                    methods=route.methods,
                    provide_automatic_options=False,
                )
        self.register_error_handler(Exception, self._error_page)
        self.after_request(_security_headers)

    def select_jinja_autoescape(self, filename: str | None) -> bool:
        """Escape in every HTML page template (ours end in .html.j2)."""
        return filename is None or filename.endswith((".html", ".htm", ".xml", ".html.j2"))

    @property
    def mailer(self) -> ConfirmationMailer:
        """The confirmation mailer (its queue is in the database)."""
        return self.context.mailer

    def _view(self, route: Route) -> Callable[..., flask.Response]:
        handler = route.handler

        def view(token: str = "", **path_values: object) -> flask.Response:
            request = flask.request
            fields: dict[str, list[str]] = {}
            is_form = False
            body = b""
            if request.method == "POST" and route.raw_body_limit:
                body = read_raw_body(request, route.raw_body_limit)
            elif request.method == "POST":
                fields, is_form = read_fields(request, self.max_body)
            call = Request(
                request.environ,
                request.method,
                wants_json(request.environ),
                token,
                {name: str(value) for name, value in path_values.items()},
                fields,
                is_form,
                body,
            )
            return _flask_response(handler(self.context, call))

        view.__name__ = handler.__name__
        return view

    def _error_page(self, exc: Exception) -> flask.Response:
        """Every error as our page (or JSON): ours, werkzeug's 404/405/413, the database's,
        and a bug (logged; the visitor sees no traceback)."""
        request = flask.request
        json_wanted = wants_json(request.environ)
        if isinstance(exc, HTTPException):
            exc = _http_error(exc)
        elif isinstance(exc, DatabaseError):
            log.error("%s %s: %s", request.method, short_path(request.path), exc.message)
            exc = HttpError(503, N_("Try again later"), N_("The service is unavailable right now."))
        elif not isinstance(exc, HttpError):
            # The one catch-all: a bug must not show a traceback to the visitor; it is logged.
            log.exception("%s %s failed", request.method, short_path(request.path))
            exc = HttpError(500, N_("Something went wrong"), N_("Please try again later."))
        return _flask_response(self.context.shell.error(exc, json_wanted))

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Flask's app, with the mailer started on first use and one access log line."""
        started = time.perf_counter()
        if self.mailer_thread and not self.context.mailer.running:
            self.context.mailer.start()
            self.context.categories.start()
        seen: dict[str, Any] = {}

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = super().wsgi_app(environ, recording)
        length = dict(seen.get("headers", [])).get("Content-Length", "0")
        access_log.info(
            "%s %s %s %s %s %.1fms",
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD", "GET"),
            short_path(str(environ.get("PATH_INFO", "") or "/")),
            str(seen.get("status", "500")).split(" ", 1)[0],
            length,
            (time.perf_counter() - started) * 1000,
        )
        return body


def _http_error(exc: HTTPException) -> HttpError:
    """werkzeug's exception as one of our error pages."""
    if isinstance(exc, MethodNotAllowed):
        return method_not_allowed(exc.valid_methods or ())
    if exc.code == 404:
        return not_found()
    if exc.code == 413:
        return HttpError(413, N_("Too large"), N_("The request is too large."))
    # Another refusal of werkzeug's (a bad request line, headers too large): its code, our words.
    return HttpError(
        exc.code or 400,
        N_("Bad request"),
        N_("The request could not be handled (HTTP %(code)d)."),
        values={"code": exc.code or 400},
        state=error_code(exc.name),
    )


def _flask_response(response: Response) -> flask.Response:
    answer = flask.Response(response.body, status=response.status)
    answer.headers["Content-Type"] = response.content_type
    for name, value in response.headers:
        answer.headers.add(name, value)
    return answer


def _security_headers(response: flask.Response) -> flask.Response:
    """Every answer's security headers; a handler may set its own (the archive's CSP)."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    return response
