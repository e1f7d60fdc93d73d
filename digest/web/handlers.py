"""The handlers of `digest serve`: one function per method and page, each one store call.

web's routes pick the handler; it reads the token or the form, calls the store, draws a page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from digest.errors import BadInputError
from digest.render import digest_title
from digest.store.confirmations import LinkCheck, LinkState, check_link, confirm_link
from digest.store.models import ACTIVE, PENDING
from digest.store.preferences import unsubscribe_from_digest
from digest.store.signups import (
    StaleLinkError,
    ping,
    queue_signup,
    subscriber_for_link,
    unsubscribe_id,
)
from digest.tokens import (
    CONFIRM_MAX_AGE,
    ConfirmLink,
    UnsubscribeLink,
    read_confirm_token,
    read_unsubscribe_token,
)
from digest.web.clients import Network, client_address, client_key
from digest.web.forms import HONEYPOT_FIELD, Request, form_fields, read_signup
from digest.web.mailer import ConfirmationMailer
from digest.web.pages import HttpError, PageShell, Response, invalid_link, mask_email
from digest.web.site_categories import SiteCategories

if TYPE_CHECKING:
    from digest.bounces.webhooks import Webhooks
    from digest.config import Settings
    from digest.store import Store

# One logger for the whole web side, as before it became a package (its name is in log lines).
log = logging.getLogger("digest.web")

ONE_CLICK = "One-Click"
LINK_LIFE = timedelta(seconds=CONFIRM_MAX_AGE)
EVERYTHING = "everything"  # the `scope` form field that leaves every digest at once


@dataclass(frozen=True)
class WebContext:
    """What every handler may use: settings, the store, the signing secret, the page shell,
    the confirmation mailer, the trusted proxies and the site's categories."""

    settings: Settings
    store: Store
    secret: str
    shell: PageShell
    mailer: ConfirmationMailer
    trusted_proxies: tuple[Network, ...]
    categories: SiteCategories
    webhooks: Webhooks | None = None  # the relay webhooks, when any relay is configured

    @property
    def site_title(self) -> str:
        """The site's title, as in settings.site.title."""
        return self.shell.site_title

    @property
    def digest_names(self) -> list[str]:
        """The names of the config's digests, in its order."""
        return list(self.settings.digests)


def healthz(context: WebContext, request: Request) -> Response:
    """200 ok when the database answers, else 503 (via DatabaseError)."""
    ping(context.store)
    return Response(200, b"ok\n", "text/plain; charset=utf-8")


def unsubscribe_page(context: WebContext, request: Request) -> Response:
    """GET: a page with an unsubscribe button; nothing is changed."""
    link = _unsubscribe_link(context, request.token)
    title = context.site_title
    try:
        row = subscriber_for_link(context.store, link.subscriber_id, link.link_key)
    except StaleLinkError:
        raise _stale_unsubscribe_link() from None
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
    link = _unsubscribe_link(context, request.token)
    digest = link.digest
    fields = form_fields(request)
    one_click = ONE_CLICK in fields.get("List-Unsubscribe", [])
    how = "one-click" if one_click else "web"
    try:
        if EVERYTHING in fields.get("scope", []):
            row = unsubscribe_id(context.store, link.subscriber_id, link.link_key, reason=how)
            still_on: tuple[str, ...] = ()
        else:
            # The link must hold (bound to this subscription) before it changes anything.
            if subscriber_for_link(context.store, link.subscriber_id, link.link_key) is None:
                return _not_on_list(context, request)
            left = unsubscribe_from_digest(
                context.store,
                link.subscriber_id,
                digest,
                every_digest=context.settings.digests,
                reason=how,
            )
            row, still_on = (left.subscriber, left.still_on) if left else (None, ())
    except StaleLinkError:
        raise _stale_unsubscribe_link() from None
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
            hidden={"scope": EVERYTHING},
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
    """GET: what the link would confirm (address, name, categories) and a button; no change."""
    link = _confirm_link(context, request.token)
    check = check_link(context.store, link.subscriber_id, link.nonce, max_age=LINK_LIFE)
    row = check.subscriber
    if row is None or check.state is not LinkState.CONFIRMABLE:
        return _not_confirmable(context, request, check)
    title = context.site_title
    lines = [f"Subscribe {mask_email(row.email)} to {title}?"]
    if row.name:
        lines.append(f"Name: {row.name}")
    if row.categories:
        lines.append(f"Categories: {', '.join(row.categories)}")
    return context.shell.page(
        200,
        f"Confirm your subscription to {title}",
        lines,
        button="Confirm subscription",
        wants_json=request.wants_json,
        state=row.status,
    )


def confirm(context: WebContext, request: Request) -> Response:
    """POST: activate the subscriber, if this very link may (once)."""
    link = _confirm_link(context, request.token)
    check = confirm_link(context.store, link.subscriber_id, link.nonce, max_age=LINK_LIFE)
    row = check.subscriber
    if row is None or check.state is not LinkState.CONFIRMABLE:
        return _not_confirmable(context, request, check)
    log.info("subscriber %d confirmed", row.id)
    return context.shell.page(
        200,
        "Subscription confirmed",
        [f"{mask_email(row.email)} will receive {context.site_title}'s digest. Thank you!"],
        wants_json=request.wants_json,
        state="active",
    )


def signup_page(context: WebContext, request: Request) -> Response:
    """GET: the sign-up form, with the site's categories and the config's digests to choose."""
    if request.wants_json:
        return context.shell.page(
            200,
            f"Subscribe to {context.site_title}",
            ["POST email, and optionally name, categories and digests, to this address."],
            wants_json=True,
            state="form",
        )
    return context.shell.render(
        200,
        "web/subscribe.html.j2",
        {
            "title": f"Subscribe to {context.site_title}",
            "categories": context.categories(),
            "digests": [
                (name, digest_title(d, context.settings.site.lang))
                for name, d in context.settings.digests.items()
            ],
            "honeypot_field": HONEYPOT_FIELD,
        },
    )


def subscribe(context: WebContext, request: Request) -> Response:
    """POST: record the sign-up request for the mailer; the same answer every time.

    New, pending, active, unsubscribed or bounced, over a limit, caught by the honeypot, relay
    up or down: the status, body and work done here (one insert) do not tell them apart. The
    mailer decides and sends outside the request.
    """
    form = read_signup(request, context.categories())
    unknown = sorted(set(form.digests) - set(context.digest_names))
    if unknown:
        raise HttpError(400, "Please check the form", f"There is no digest {unknown[0]!r}.")
    # Every digest ticked is every digest, future ones included; none ticked is the same.
    chosen = None if set(form.digests) in (set(), set(context.digest_names)) else form.digests
    if not form.honeypot_filled:
        address = client_address(request.environ, context.trusted_proxies)
        try:
            queue_signup(
                context.store,
                form.email,
                name=form.name,
                categories=form.categories or None,
                digests=chosen,
                client_key=client_key(context.secret, address),
            )
        except BadInputError as exc:
            raise HttpError(400, "Please check the form", exc.message) from None
    context.mailer.wake()
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


def _unsubscribe_link(context: WebContext, token: str) -> UnsubscribeLink:
    try:
        return read_unsubscribe_token(context.secret, token)
    except BadInputError:
        raise invalid_link() from None


def _stale_unsubscribe_link() -> HttpError:
    return HttpError(
        400,
        "This link is no longer valid",
        "It was made for an earlier subscription. Use the link in a newer email.",
    )


def _confirm_link(context: WebContext, token: str) -> ConfirmLink:
    try:
        return read_confirm_token(context.secret, token)
    except BadInputError as exc:
        if "expired" in exc.message:
            raise _expired() from None
        raise invalid_link() from None


def _expired() -> HttpError:
    return HttpError(
        400,
        "This link has expired",
        f"Confirmation links work for {CONFIRM_MAX_AGE // 86400} days: "
        "subscribe again to get a new one.",
    )


def _not_confirmable(context: WebContext, request: Request, check: LinkCheck) -> Response:
    row = check.subscriber
    if row is None:
        return _not_on_list(context, request)
    if check.state is LinkState.ACTIVE:
        return context.shell.page(
            200,
            "Already subscribed",
            [f"{mask_email(row.email)} already receives {context.site_title}'s digest."],
            wants_json=request.wants_json,
            state="active",
        )
    if check.state is LinkState.EXPIRED:
        raise _expired()
    raise HttpError(
        400,
        "This link is no longer valid",
        "It was used already, or the subscription changed after it was sent: "
        "subscribe again to get a new one.",
    )


def _not_on_list(context: WebContext, request: Request) -> Response:
    return context.shell.page(
        404,
        "Not on the list",
        [f"This address is not on the {context.site_title} mailing list (any more)."],
        wants_json=request.wants_json,
        state="unknown",
    )
