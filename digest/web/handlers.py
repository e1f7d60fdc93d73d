"""The handlers of `digest serve`: one function per method and page, each one store call.

web's routes pick the handler; it reads the token or the form, calls the store, draws a page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from typing import TYPE_CHECKING

from digest.errors import BadInputError, SmtpError
from digest.message import confirmation_message
from digest.smtp import SmtpSender
from digest.store.models import ACTIVE, PENDING
from digest.store.preferences import unsubscribe_from_digest
from digest.store.signups import (
    confirm_subscriber,
    get_subscriber,
    ping,
    request_signup,
    unsubscribe_id,
)
from digest.tokens import CONFIRM_MAX_AGE, confirm_url, read_confirm_token, read_unsubscribe_token
from digest.web.forms import Request, form_fields, read_signup
from digest.web.pages import HttpError, PageShell, Response, invalid_link, mask_email

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.store import Store

# One logger for the whole web side, as before it became a package (its name is in log lines).
log = logging.getLogger("digest.web")

ONE_CLICK = "One-Click"
EVERYTHING = "everything"  # the `scope` form field that leaves every digest at once
SIGNUP_FORM = (
    '<label for="email">Email</label>'
    '<input id="email" name="email" type="email" required autocomplete="email">'
    '<label for="name">Name (optional)</label>'
    '<input id="name" name="name" autocomplete="name">'
)


@dataclass(frozen=True)
class WebContext:
    """What every handler may use: settings, the store, the signing secret, the page shell."""

    settings: Settings
    store: Store
    secret: str
    shell: PageShell
    sender_factory: Callable[[], SmtpSender]
    from_addr: str

    @property
    def site_title(self) -> str:
        """The site's title, as in settings.site.title."""
        return self.shell.site_title


def healthz(context: WebContext, request: Request) -> Response:
    """200 ok when the database answers, else 503 (via DatabaseError)."""
    ping(context.store)
    return Response(200, b"ok\n", "text/plain; charset=utf-8")


def unsubscribe_page(context: WebContext, request: Request) -> Response:
    """GET: a page with an unsubscribe button; nothing is changed."""
    subscriber_id = _unsubscribe_id(context, request.token)
    title = context.site_title
    row = get_subscriber(context.store, subscriber_id)
    if row is None:
        return _not_on_list(context, request)
    masked = mask_email(row.email)
    if row.status not in (ACTIVE, PENDING):
        return context.shell.page(
            200,
            "Already unsubscribed",
            [f"{masked} gets no emails from {title}."],
            wants_json=request.wants_json,
            state=row.status,
        )
    return context.shell.page(
        200,
        f"Unsubscribe from {title}?",
        [f"Unsubscribe {masked} from {title}?"],
        button="Unsubscribe",
        wants_json=request.wants_json,
        state=row.status,
    )


def unsubscribe(context: WebContext, request: Request) -> Response:
    """POST (RFC 8058 one-click or the page's button): leave the link's digest.

    With scope=everything (one more click, on the answer page) it leaves every digest.
    """
    subscriber_id, digest = _unsubscribe_target(context, request.token)
    fields = form_fields(request)
    one_click = ONE_CLICK in fields.get("List-Unsubscribe", [])
    how = "one-click" if one_click else "web"
    if EVERYTHING in fields.get("scope", []):
        row = unsubscribe_id(context.store, subscriber_id, reason=how)
        still_on: tuple[str, ...] = ()
    else:
        left = unsubscribe_from_digest(
            context.store, subscriber_id, digest, every_digest=context.settings.digests, reason=how
        )
        row, still_on = (left.subscriber, left.still_on) if left else (None, ())
    if row is None:
        return _not_on_list(context, request)
    log.info("subscriber %d unsubscribed (%s)", row.id, how)
    if still_on:
        return context.shell.page(
            200,
            f"You left the {digest} digest",
            [
                f"{mask_email(row.email)} will get no more {digest} emails from "
                f"{context.site_title}.",
                f"You still get: {', '.join(still_on)}.",
            ],
            button="Unsubscribe from everything",
            form_fields=f'<input type="hidden" name="scope" value="{EVERYTHING}">',
            wants_json=request.wants_json,
            state="left-digest",
        )
    return context.shell.page(
        200,
        "You are unsubscribed",
        [
            f"{mask_email(row.email)} will get no more emails from {context.site_title}.",
            "Changed your mind? Subscribe again on the site.",
        ],
        wants_json=request.wants_json,
        state="unsubscribed",
    )


def confirm_page(context: WebContext, request: Request) -> Response:
    """GET: a page with a confirm button; nothing is changed."""
    subscriber_id = _confirm_id(context, request.token)
    title = context.site_title
    row = get_subscriber(context.store, subscriber_id)
    if row is None:
        return _not_on_list(context, request)
    masked = mask_email(row.email)
    if row.status == ACTIVE:
        return context.shell.page(
            200,
            "Already subscribed",
            [f"{masked} already receives {title}'s digest."],
            wants_json=request.wants_json,
            state="active",
        )
    return context.shell.page(
        200,
        f"Confirm your subscription to {title}",
        [f"Subscribe {masked} to {title}?"],
        button="Confirm subscription",
        wants_json=request.wants_json,
        state=row.status,
    )


def confirm(context: WebContext, request: Request) -> Response:
    """POST: activate the subscriber."""
    subscriber_id = _confirm_id(context, request.token)
    row = confirm_subscriber(context.store, subscriber_id)
    if row is None:
        return _not_on_list(context, request)
    log.info("subscriber %d confirmed", row.id)
    return context.shell.page(
        200,
        "Subscription confirmed",
        [f"{mask_email(row.email)} will receive {context.site_title}'s digest. Thank you!"],
        wants_json=request.wants_json,
        state="active",
    )


def signup_page(context: WebContext, request: Request) -> Response:
    """GET: the sign-up form."""
    return context.shell.page(
        200,
        f"Subscribe to {context.site_title}",
        ["New posts, by email. You can unsubscribe with one click."],
        button="Subscribe",
        form_fields=SIGNUP_FORM,
        wants_json=request.wants_json,
        state="form",
    )


def subscribe(context: WebContext, request: Request) -> Response:
    """POST: record a pending sign-up and mail the confirmation link."""
    form = read_signup(request)
    try:
        signup = request_signup(
            context.store, form.email, name=form.name, categories=form.categories or None
        )
    except BadInputError as exc:
        raise HttpError(400, "Please check the form", exc.message) from None
    if signup.needs_confirmation:
        send_confirmation(context, signup.subscriber.id, signup.subscriber.email, form.name or "")
    # The same answer for new, pending, active or unsubscribed: no address enumeration.
    return context.shell.page(
        202,
        "Check your inbox",
        [
            "If the address can be subscribed, a confirmation link is on its way.",
            "Open it to start receiving the digest.",
        ],
        wants_json=request.wants_json,
        state="check-inbox",
    )


def send_confirmation(context: WebContext, subscriber_id: int, email: str, name: str) -> None:
    """Mail the confirmation link; HttpError 503 if the SMTP server will not take it."""
    msg = confirmation_message(
        context.settings,
        to_email=email,
        to_name=name,
        link=confirm_url(context.settings, subscriber_id),
    )
    utf8 = not (email.isascii() and context.from_addr.isascii())
    data = msg.as_bytes(policy=policy.SMTP.clone(utf8=utf8, max_line_length=998))
    failure = ""
    try:
        with context.sender_factory() as sender:
            result = sender.send(context.from_addr, email, data)
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


def _unsubscribe_id(context: WebContext, token: str) -> int:
    return _unsubscribe_target(context, token)[0]


def _unsubscribe_target(context: WebContext, token: str) -> tuple[int, str]:
    """(subscriber id, digest name) of an unsubscribe link, or the invalid-link page."""
    try:
        return read_unsubscribe_token(context.secret, token)
    except BadInputError:
        raise invalid_link() from None


def _confirm_id(context: WebContext, token: str) -> int:
    try:
        return read_confirm_token(context.secret, token)
    except BadInputError as exc:
        if "expired" in exc.message:
            raise HttpError(
                400,
                "This link has expired",
                f"Confirmation links work for {CONFIRM_MAX_AGE // 86400} days: "
                "subscribe again to get a new one.",
            ) from None
        raise invalid_link() from None


def _not_on_list(context: WebContext, request: Request) -> Response:
    return context.shell.page(
        404,
        "Not on the list",
        [f"This address is not on the {context.site_title} mailing list (any more)."],
        wants_json=request.wants_json,
        state="unknown",
    )
