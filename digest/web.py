"""The HTTP side (`digest serve`): unsubscribe links, RFC 8058 one-click, sign-up and confirmation.

web is a door: a stdlib WSGI app that parses the request, makes one store call and shows a page.

`make_app(settings, store)` is a plain WSGI callable, so gunicorn or uwsgi can run it too;
`serve()` runs it on wsgiref's server with a thread per request. A GET never changes anything
(mail link scanners prefetch every URL); every change is a POST, with the signed token in the
path as the only authority (RFC 8058 providers send no cookies), answered 200 without redirect.
"""

from __future__ import annotations

import html
import json
import logging
import re
import signal
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from digest.addresses import address_domain
from digest.errors import BadInputError, DatabaseError, DigestError, SmtpError
from digest.smtp import SmtpSender, helo_name
from digest.store.models import ACTIVE, PENDING, utcnow
from digest.store.signups import (
    confirm_subscriber,
    get_subscriber,
    ping,
    request_signup,
    unsubscribe_id,
)
from digest.tokens import (
    CONFIRM_MAX_AGE,
    check_secret,
    confirm_url,
    read_confirm_token,
    read_unsubscribe_token,
)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from digest.config import Settings
    from digest.store import Store

log = logging.getLogger(__name__)
access_log = logging.getLogger("digest.web.access")

MAX_BODY = 64 * 1024
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 100
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
]
ONE_CLICK = "One-Click"
_TOKEN = r"[A-Za-z0-9_.\-]{1,512}"
_ROUTES = [
    (re.compile(rf"^/unsubscribe/({_TOKEN})/?$"), "unsubscribe", ("GET", "HEAD", "POST")),
    (re.compile(rf"^/confirm/({_TOKEN})/?$"), "confirm", ("GET", "HEAD", "POST")),
    (re.compile(r"^/subscribe/?$"), "subscribe", ("GET", "HEAD", "POST")),
    (re.compile(r"^/healthz$"), "healthz", ("GET", "HEAD")),
]
_SPLIT_CATEGORIES = re.compile(r"[,;\s]+")
_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_STYLE = """
body{margin:0;background:#f4f4f5;color:#18181b;font:16px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.35rem;margin:0 0 1rem}
p{margin:0 0 1rem}
.site{color:#71717a;font-size:.9rem;margin-bottom:1.5rem}
button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:8px;background:#2563eb;
color:#fff;cursor:pointer}
button:hover{background:#1d4ed8}
label{display:block;margin:.5rem 0 .2rem;font-size:.9rem}
input{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #d4d4d8;
border-radius:6px;margin-bottom:.5rem}
a{color:#2563eb}
""".replace("\n", "")


class HttpError(Exception):
    """A request we answer with an error page (its status and a message for the person)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass
class Response:
    """A page (or JSON) to send back; `body` is bytes already."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def mask_email(address: str) -> str:
    """`j***@example.com`: enough for the owner to recognise, little for anyone else."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"


_TOKEN_IN_TEXT = re.compile(rf"(/(?:unsubscribe|confirm)/)({_TOKEN})")


def short_path(path: str) -> str:
    """The path with any token cut to its first 8 characters, for logs."""
    return re.sub(rf"^(/(?:unsubscribe|confirm)/)({_TOKEN})", _cut, path)


def _cut(match: re.Match[str]) -> str:
    token = match.group(2)
    return match.group(1) + (token[:8] + "…" if len(token) > 8 else token)


def split_categories(values: Iterable[str]) -> list[str]:
    """Categories from repeated fields, each comma, semicolon or space separated."""
    return [part for value in values for part in _SPLIT_CATEGORIES.split(value) if part]


def confirmation_message(
    settings: Settings, *, to_email: str, to_name: str, link: str, now: Any = None
) -> EmailMessage:
    """The 'confirm your subscription' email: plain text first, HTML last."""
    from_name, from_addr = settings.email.from_name, settings.email.from_address
    title = settings.site.title
    msg = EmailMessage()
    # Address() refuses CR/LF in either part, the last guard against header injection.
    msg["From"] = Address(display_name=from_name, addr_spec=from_addr)
    msg["To"] = Address(display_name=to_name, addr_spec=to_email)
    if settings.email.reply_to:
        msg["Reply-To"] = settings.email.reply_to
    msg["Subject"] = f"Confirm your subscription to {title}"
    msg["Date"] = format_datetime(now or utcnow())
    msg["Message-ID"] = make_msgid(domain=address_domain(from_addr))
    msg["Auto-Submitted"] = "auto-generated"
    greeting = f"Hello {to_name}," if to_name else "Hello,"
    days = CONFIRM_MAX_AGE // 86400
    msg.set_content(
        f"{greeting}\n\n"
        f"Someone, hopefully you, asked to subscribe {to_email} to {title}.\n"
        f"To confirm, open this link (it works for {days} days) and press the button:\n\n"
        f"{link}\n\n"
        "If it was not you, ignore this email: nothing more will be sent.\n"
    )
    e = html.escape
    msg.add_alternative(
        f"""<!doctype html><html><body style="font-family:Arial,sans-serif;color:#18181b">
<p>{e(greeting)}</p>
<p>Someone, hopefully you, asked to subscribe <b>{e(to_email)}</b> to {e(title)}.</p>
<p><a href="{e(link)}" style="display:inline-block;padding:10px 18px;background:#2563eb;\
color:#ffffff;text-decoration:none;border-radius:6px">Confirm my subscription</a></p>
<p style="color:#71717a;font-size:13px">The link works for {days} days.
If it was not you, ignore this email: nothing more will be sent.</p>
</body></html>
""",
        subtype="html",
    )
    return msg


class DigestWebApp:
    """The WSGI application behind `digest serve` (see make_app)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        max_body: int = MAX_BODY,
        sender_factory: Callable[[], SmtpSender] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.secret = check_secret(settings.web.secret.get_secret_value())
        self.max_body = max_body
        self.sender_factory = sender_factory or (
            lambda: SmtpSender(settings.smtp, local_hostname=helo_name(settings.email.from_address))
        )
        self.site_title = settings.site.title
        self.from_addr = settings.email.from_address

    # --- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "") or "/")
        wants_json = _wants_json(environ)
        try:
            response = self.dispatch(environ, method, path, wants_json)
        except HttpError as exc:
            response = self.error(exc, wants_json)
        except DatabaseError as exc:
            log.error("%s %s: %s", method, short_path(path), exc.message)
            response = self.error(
                HttpError(503, "Try again later", "The service is unavailable right now."),
                wants_json,
            )
        except Exception:
            # The one catch-all: a bug must not show a traceback to the visitor; it is logged.
            log.exception("%s %s failed", method, short_path(path))
            response = self.error(
                HttpError(500, "Something went wrong", "Please try again later."), wants_json
            )
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *SECURITY_HEADERS,
            *response.headers,
        ]
        start_response(f"{response.status} {_REASONS.get(response.status, '')}".strip(), headers)
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
        self, environ: WSGIEnvironment, method: str, path: str, wants_json: bool
    ) -> Response:
        """Route a request to its handler; HttpError for 404/405."""
        for pattern, name, methods in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            if method not in methods:
                raise _MethodNotAllowed(methods)
            handler: Callable[..., Response] = getattr(self, f"do_{name}")
            body = self.read_body(environ) if method == "POST" else b""
            return handler(environ, method == "POST", body, wants_json, *match.groups())
        raise HttpError(404, "Not found", "There is no page at this address.")

    def read_body(self, environ: WSGIEnvironment) -> bytes:
        """The request body, at most max_body bytes (413 beyond)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError(400, "Bad request", "The Content-Length is not a number.") from None
        if length > self.max_body:
            raise HttpError(413, "Too large", f"The request body is over {self.max_body} bytes.")
        if length <= 0:
            return b""
        data: bytes = environ["wsgi.input"].read(length)
        return data

    # --- pages -------------------------------------------------------------------------------

    def page(
        self,
        status: int,
        title: str,
        paragraphs: Iterable[str],
        *,
        button: str | None = None,
        form_fields: str = "",
        wants_json: bool = False,
        state: str = "",
    ) -> Response:
        """An HTML page (title, escaped paragraphs, an optional POST button), or its JSON."""
        texts = list(paragraphs)
        if wants_json:
            body = {"ok": status < 400, "status": state or title, "message": " ".join(texts)}
            return Response(status, json.dumps(body).encode(), "application/json")
        e = html.escape
        parts = "".join(f"<p>{e(t)}</p>" for t in texts)
        if button:
            # No action attribute: the form posts back to this very URL, token included.
            parts += (
                f'<form method="post">{form_fields}'
                f'<button type="submit">{e(button)}</button></form>'
            )
        root = self.settings.site.root_url
        doc = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{e(title)} · {e(self.site_title)}</title><style>{_STYLE}</style></head>"
            f'<body><main><div class="site"><a href="{e(root)}/">{e(self.site_title)}</a></div>'
            f"<h1>{e(title)}</h1>{parts}</main></body></html>"
        )
        return Response(status, doc.encode("utf-8"))

    def error(self, exc: HttpError, wants_json: bool) -> Response:
        """The page (or JSON) for an HttpError."""
        response = self.page(exc.status, exc.title, [exc.message], wants_json=wants_json)
        if isinstance(exc, _MethodNotAllowed):
            response.headers.append(("Allow", ", ".join(exc.methods)))
        return response

    # --- handlers ----------------------------------------------------------------------------

    def do_healthz(
        self, environ: WSGIEnvironment, post: bool, body: bytes, wants_json: bool
    ) -> Response:
        """200 ok when the database answers, else 503 (via DatabaseError)."""
        ping(self.store)
        return Response(200, b"ok\n", "text/plain; charset=utf-8")

    def _unsubscribe_id(self, token: str) -> int:
        try:
            subscriber_id, _digest = read_unsubscribe_token(self.secret, token)
        except BadInputError:
            raise _invalid_link() from None
        return subscriber_id

    def do_unsubscribe(
        self, environ: WSGIEnvironment, post: bool, body: bytes, wants_json: bool, token: str
    ) -> Response:
        """GET: a page with a button, nothing changed. POST (one-click or button): unsubscribe."""
        subscriber_id = self._unsubscribe_id(token)
        title = self.site_title
        if post:
            fields = _form_fields(environ, body)
            one_click = ONE_CLICK in fields.get("List-Unsubscribe", [])
            row = unsubscribe_id(
                self.store, subscriber_id, reason="one-click" if one_click else "web"
            )
            if row is None:
                return self._not_on_list(wants_json)
            log.info("subscriber %d unsubscribed (%s)", row.id, "one-click" if one_click else "web")
            return self.page(
                200,
                "You are unsubscribed",
                [
                    f"{mask_email(row.email)} will get no more emails from {title}.",
                    "Changed your mind? Subscribe again on the site.",
                ],
                wants_json=wants_json,
                state="unsubscribed",
            )
        row = get_subscriber(self.store, subscriber_id)
        if row is None:
            return self._not_on_list(wants_json)
        masked = mask_email(row.email)
        if row.status not in (ACTIVE, PENDING):
            return self.page(
                200,
                "Already unsubscribed",
                [f"{masked} gets no emails from {title}."],
                wants_json=wants_json,
                state=row.status,
            )
        return self.page(
            200,
            f"Unsubscribe from {title}?",
            [f"Unsubscribe {masked} from {title}?"],
            button="Unsubscribe",
            wants_json=wants_json,
            state=row.status,
        )

    def _not_on_list(self, wants_json: bool) -> Response:
        return self.page(
            404,
            "Not on the list",
            [f"This address is not on the {self.site_title} mailing list (any more)."],
            wants_json=wants_json,
            state="unknown",
        )

    def do_confirm(
        self, environ: WSGIEnvironment, post: bool, body: bytes, wants_json: bool, token: str
    ) -> Response:
        """GET: a page with a confirm button. POST: activate the subscriber."""
        try:
            subscriber_id = read_confirm_token(self.secret, token)
        except BadInputError as exc:
            if "expired" in exc.message:
                raise HttpError(
                    400,
                    "This link has expired",
                    f"Confirmation links work for {CONFIRM_MAX_AGE // 86400} days: "
                    "subscribe again to get a new one.",
                ) from None
            raise _invalid_link() from None
        title = self.site_title
        if post:
            row = confirm_subscriber(self.store, subscriber_id)
            if row is None:
                return self._not_on_list(wants_json)
            log.info("subscriber %d confirmed", row.id)
            return self.page(
                200,
                "Subscription confirmed",
                [f"{mask_email(row.email)} will receive {title}'s digest. Thank you!"],
                wants_json=wants_json,
                state="active",
            )
        row = get_subscriber(self.store, subscriber_id)
        if row is None:
            return self._not_on_list(wants_json)
        masked = mask_email(row.email)
        if row.status == ACTIVE:
            return self.page(
                200,
                "Already subscribed",
                [f"{masked} already receives {title}'s digest."],
                wants_json=wants_json,
                state="active",
            )
        return self.page(
            200,
            f"Confirm your subscription to {title}",
            [f"Subscribe {masked} to {title}?"],
            button="Confirm subscription",
            wants_json=wants_json,
            state=row.status,
        )

    def do_subscribe(
        self, environ: WSGIEnvironment, post: bool, body: bytes, wants_json: bool
    ) -> Response:
        """GET: a sign-up form. POST: record a pending sign-up and mail the confirmation link."""
        if not post:
            form = (
                '<label for="email">Email</label>'
                '<input id="email" name="email" type="email" required autocomplete="email">'
                '<label for="name">Name (optional)</label>'
                '<input id="name" name="name" autocomplete="name">'
            )
            return self.page(
                200,
                f"Subscribe to {self.site_title}",
                ["New posts, by email. You can unsubscribe with one click."],
                button="Subscribe",
                form_fields=form,
                wants_json=wants_json,
                state="form",
            )
        fields = _form_fields(environ, body, required=True)
        email = " ".join(fields.get("email", [])).strip()
        if not email:
            raise HttpError(400, "Email address needed", "Please give an email address.")
        names = [n for n in fields.get("name", []) if n.strip()]
        name = names[0] if names else None
        categories = split_categories(fields.get("categories", []))
        if len(categories) > MAX_CATEGORIES or any(
            len(c) > MAX_CATEGORY_LENGTH for c in categories
        ):
            raise HttpError(400, "Too many categories", "Please choose fewer, shorter categories.")
        try:
            signup = request_signup(self.store, email, name=name, categories=categories or None)
        except BadInputError as exc:
            raise HttpError(400, "Please check the form", exc.message) from None
        if signup.needs_confirmation:
            self.send_confirmation(signup.subscriber.id, signup.subscriber.email, name or "")
        # The same answer for new, pending, active or unsubscribed: no address enumeration.
        return self.page(
            202,
            "Check your inbox",
            [
                "If the address can be subscribed, a confirmation link is on its way.",
                "Open it to start receiving the digest.",
            ],
            wants_json=wants_json,
            state="check-inbox",
        )

    def send_confirmation(self, subscriber_id: int, email: str, name: str) -> None:
        """Mail the confirmation link; HttpError 503 if the SMTP server will not take it."""
        msg = confirmation_message(
            self.settings,
            to_email=email,
            to_name=name,
            link=confirm_url(self.settings, subscriber_id),
        )
        utf8 = not (email.isascii() and self.from_addr.isascii())
        data = msg.as_bytes(policy=policy.SMTP.clone(utf8=utf8, max_line_length=998))
        failure = ""
        try:
            with self.sender_factory() as sender:
                result = sender.send(self.from_addr, email, data)
            if result.outcome != "sent":
                failure = f"{result.code} {result.reply}"
        except SmtpError as exc:
            failure = exc.message
        if failure:
            log.error("confirmation email for subscriber %d not sent: %s", subscriber_id, failure)
            raise HttpError(
                503,
                "Please try again later",
                "We could not send the confirmation email, try again later.",
            )
        log.info("confirmation email sent to subscriber %d", subscriber_id)


class _MethodNotAllowed(HttpError):
    def __init__(self, methods: tuple[str, ...]) -> None:
        super().__init__(
            405, "Method not allowed", f"This address answers {', '.join(methods)} only."
        )
        self.methods = methods


def _invalid_link() -> HttpError:
    return HttpError(
        400,
        "This link is not valid",
        "The link is incomplete or was changed. Copy the whole link from the email.",
    )


def _wants_json(environ: WSGIEnvironment) -> bool:
    accept = str(environ.get("HTTP_ACCEPT", ""))
    return "application/json" in accept and "text/html" not in accept


def _form_fields(
    environ: WSGIEnvironment, body: bytes, *, required: bool = False
) -> dict[str, list[str]]:
    """Fields of a form-encoded or multipart body; others are empty (or 415 when required)."""
    ctype = str(environ.get("CONTENT_TYPE", "")).strip()
    kind = ctype.split(";", 1)[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded" or (not kind and not required):
            return parse_qs(
                body.decode("utf-8"),
                keep_blank_values=True,
                max_num_fields=200,
                strict_parsing=False,
            )
        if kind == "multipart/form-data":
            return _multipart(ctype, body)
    except (UnicodeDecodeError, ValueError):
        raise HttpError(
            400, "Bad request", "The form data could not be read (not UTF-8?)."
        ) from None
    if required:
        raise HttpError(
            415,
            "Unsupported form",
            "Send the form as application/x-www-form-urlencoded or multipart/form-data.",
        )
    return {}


def _multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    """multipart/form-data fields (files are ignored), read with the stdlib email parser."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("not multipart")
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        fields.setdefault(name, []).append(payload.decode("utf-8"))
    return fields


def make_app(
    settings: Settings,
    store: Store,
    *,
    max_body: int = MAX_BODY,
    sender_factory: Callable[[], SmtpSender] | None = None,
) -> DigestWebApp:
    """The WSGI application; ConfigError if web.secret is missing or short."""
    return DigestWebApp(settings, store, max_body=max_body, sender_factory=sender_factory)


# --- the server ----------------------------------------------------------------------------


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with a thread per request (one slow client does not stall others)."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """The app writes the access log (tokens shortened); wsgiref's own would show them whole."""

    server_version = "digest"
    sys_version = ""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing: the app has logged the request already."""

    def log_message(self, format: str, *args: Any) -> None:
        message = format % args if args else format
        log.debug("http: %s", _TOKEN_IN_TEXT.sub(_cut, message))


def make_server_for(
    settings: Settings, store: Store, host: str = "127.0.0.1", port: int = 8080
) -> ThreadingWSGIServer:
    """A bound, not yet serving server (port 0 picks a free one: see server_port)."""
    app = make_app(settings, store)
    try:
        server = make_server(
            host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise DigestError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    assert isinstance(server, ThreadingWSGIServer)
    return server


def serve(server: ThreadingWSGIServer) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly."""

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()


__all__ = [
    "DigestWebApp",
    "HttpError",
    "ThreadingWSGIServer",
    "confirmation_message",
    "make_app",
    "make_server_for",
    "mask_email",
    "serve",
    "short_path",
    "split_categories",
]
