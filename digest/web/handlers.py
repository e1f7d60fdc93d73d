"""The handlers of `digest serve`: one function per method and page, each one store call.

web's routes pick the handler; it reads the token or the form, calls the store, draws a page.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from digest.errors import BadInputError
from digest.i18n import N_
from digest.store.confirmations import LinkCheck, LinkState, check_link, confirm_link
from digest.store.models import ACTIVE, PENDING
from digest.store.preferences import unsubscribe_from_digest
from digest.store.signups import ping, queue_signup, unsubscribe_id
from digest.tokens import (
    CONFIRM_MAX_AGE,
    ConfirmLink,
    preferences_url,
    read_confirm_token,
    read_unsubscribe_token,
)
from digest.web.clients import client_address, client_key
from digest.web.context import WebContext
from digest.web.forms import (
    HONEYPOT_FIELD,
    Request,
    form_fields,
    read_signup,
    split_categories,
)
from digest.web.links import (
    current_link,
    linked_subscriber,
    not_on_list,
    not_subscribed_page,
    read_link,
    unsubscribed_page,
)
from digest.web.pages import (
    TIMEZONE_SCRIPT,
    HttpError,
    Response,
    bad_form,
    invalid_link,
    mask_email,
)

# One logger for the whole web side, as before it became a package (its name is in log lines).
log = logging.getLogger("digest.web")

ONE_CLICK = "One-Click"
LINK_LIFE = timedelta(seconds=CONFIRM_MAX_AGE)
EVERYTHING = "everything"  # the `scope` form field that leaves every digest at once


def root(context: WebContext, request: Request) -> Response:
    """GET /: to the sign-up page (303: the one a person came for)."""
    location = f"{context.settings.web.base_url}/subscribe"
    return Response(303, b"", "text/plain; charset=utf-8", [("Location", location)])


def healthz(context: WebContext, request: Request) -> Response:
    """200 ok when the database answers, else 503 (via DatabaseError)."""
    ping(context.store)
    return Response(200, b"ok\n", "text/plain; charset=utf-8")


def unsubscribe_page(context: WebContext, request: Request) -> Response:
    """GET: a page naming the link's digest, with an unsubscribe button; nothing is changed."""
    link = read_link(context, read_unsubscribe_token, request.token)
    row = linked_subscriber(context, link.subscriber_id, link.link_key)
    if row.status not in (ACTIVE, PENDING):
        return not_subscribed_page(context, request, row)
    digest = context.digest_title(link.digest)
    lines = [
        context.gettext(
            "Unsubscribe %(email)s from “%(digest)s” of %(title)s?",
            email=mask_email(row.email),
            digest=digest,
            title=context.site_title,
        )
    ]
    every = context.digest_names
    others = [d for d in row.digest_names(every) if d != link.digest and d in every]
    if others:
        titles = ", ".join(context.digest_title(name) for name in others)
        lines.append(context.gettext("You keep getting: %(digests)s.", digests=titles))
    return context.shell.page(
        200,
        context.gettext("Unsubscribe from “%(digest)s”?", digest=digest),
        lines,
        button=context.gettext("Unsubscribe"),
        wants_json=request.wants_json,
        state=row.status,
    )


def unsubscribe(context: WebContext, request: Request) -> Response:
    """POST (RFC 8058 one-click or the page's button): leave the link's digest.

    With scope=everything (one more click, on the answer page) it leaves every digest.
    """
    link = read_link(context, read_unsubscribe_token, request.token)
    digest = link.digest
    fields = form_fields(request)
    one_click = ONE_CLICK in fields.get("List-Unsubscribe", [])
    how = "one-click" if one_click else "web"
    everything = EVERYTHING in fields.get("scope", [])
    with current_link():
        if everything:
            row = unsubscribe_id(context.store, link.subscriber_id, link.link_key, reason=how)
            still_on: tuple[str, ...] = ()
        else:
            # The link must hold (bound to this subscription) before it changes anything.
            linked_subscriber(context, link.subscriber_id, link.link_key)
            left = unsubscribe_from_digest(
                context.store,
                link.subscriber_id,
                digest,
                every_digest=context.settings.digests,
                reason=how,
            )
            row, still_on = (left.subscriber, left.still_on) if left else (None, ())
    if row is None:
        raise not_on_list(context)
    log.info("subscriber %d unsubscribed (%s)", row.id, how)
    if not still_on:
        return unsubscribed_page(context, request, row, "" if everything else digest)
    title = context.digest_title(digest)
    return context.shell.page(
        200,
        context.gettext("You left “%(digest)s”", digest=title),
        [
            context.gettext(
                "%(email)s will get no more “%(digest)s” emails from %(title)s.",
                email=mask_email(row.email),
                digest=title,
                title=context.site_title,
            ),
            context.gettext(
                "You still get: %(digests)s.",
                digests=", ".join(context.digest_title(name) for name in still_on),
            ),
        ],
        button=context.gettext("Unsubscribe from everything"),
        hidden={"scope": EVERYTHING},
        wants_json=request.wants_json,
        state="left-digest",
    )


def confirm_page(context: WebContext, request: Request) -> Response:
    """GET: what the link would confirm (address, name, categories, digests) and a button;
    no change."""
    link = _confirm_link(context, request.token)
    check = check_link(context.store, link.subscriber_id, link.nonce, max_age=LINK_LIFE)
    row = check.subscriber
    if row is None or check.state is not LinkState.CONFIRMABLE:
        return _not_confirmable(context, request, check)
    title = context.site_title
    lines = [
        context.gettext(
            "Subscribe %(email)s to %(title)s?", email=mask_email(row.email), title=title
        )
    ]
    # Every choice the link will save: its own request's (a link from before choices were
    # kept saves nothing and shows the record).
    choices = check.choices
    name = choices.name if choices is not None else row.name
    categories = list(choices.categories) if choices is not None else list(row.categories)
    if name:
        lines.append(context.gettext("Name: %(name)s", name=name))
    if categories:
        lines.append(
            context.gettext("Categories: %(categories)s", categories=", ".join(categories))
        )
    if choices is not None and len(context.digest_names) > 1:
        chosen = choices.digests if choices.digests is not None else context.digest_names
        titles = ", ".join(context.digest_title(d) for d in chosen)
        lines.append(f"{context.gettext('Digests')}: {titles}")
    return context.shell.page(
        200,
        context.gettext("Confirm your subscription to %(title)s", title=title),
        lines,
        button=context.gettext("Confirm subscription"),
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
    manage = preferences_url(context.settings, row.id, row.link_key)
    return context.shell.page(
        200,
        context.gettext("Subscription confirmed"),
        [
            context.gettext(
                "%(email)s will receive the digest of %(title)s. Thank you!",
                email=mask_email(row.email),
                title=context.site_title,
            )
        ],
        links=[(manage, context.gettext("Choose digests and categories"))],
        wants_json=request.wants_json,
        state="active",
    )


def signup_page(context: WebContext, request: Request) -> Response:
    """GET: the sign-up form, with the site's categories and the config's digests to choose."""
    return _signup_form(context, request, 200)


def _signup_form(
    context: WebContext, request: Request, status: int, *, error: str = ""
) -> Response:
    """The sign-up form; after a refused POST with the error and what was typed kept."""
    title = context.gettext("Subscribe to %(title)s", title=context.site_title)
    fields = request.fields if request.method == "POST" else {}

    def first(name: str) -> str:
        return next((v for v in fields.get(name, []) if v.strip()), "")

    if request.wants_json:
        return context.shell.page(
            200,
            title,
            [
                context.gettext(
                    "POST email, and optionally name, categories and digests, to this address."
                )
            ],
            wants_json=True,
            state="form",
        )
    ticked = {c.casefold() for c in split_categories(fields.get("categories", []))}
    chosen_digests = set(fields.get("digests", [])) or set(context.digest_names)
    return context.shell.render(
        status,
        "web/subscribe.html.j2",
        {
            "title": title,
            "categories": context.categories(),
            "digests": [(name, context.digest_title(name)) for name in context.digest_names],
            "honeypot_field": HONEYPOT_FIELD,
            "timezone_script": TIMEZONE_SCRIPT,
            "error": error,
            "email": first("email"),
            "name": first("name"),
            "ticked_categories": ticked,
            "ticked_digests": chosen_digests,
        },
    )


def subscribe(context: WebContext, request: Request) -> Response:
    """POST: record the sign-up request for the mailer; the same answer every time.

    New, pending, active, unsubscribed or bounced, over a limit, caught by the honeypot, relay
    up or down: the status, body and work done here (one insert) do not tell them apart. The
    mailer decides and sends outside the request.
    """
    try:
        form = read_signup(request, context.categories())
        unknown = sorted(set(form.digests) - set(context.digest_names))
        if unknown:
            raise bad_form(N_("There is no digest %(name)s."), name=repr(unknown[0]))
    except HttpError as exc:
        if request.wants_json or exc.status != 400:
            raise
        # Not a dead end: the form again, saying what to change, with what was typed.
        message = context.gettext(exc.message, **exc.values)
        return _signup_form(context, request, exc.status, error=message)
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
                timezone=form.timezone,
            )
        except BadInputError as exc:
            # read_signup checked the address, name and categories: this is unexpected.
            log.warning("sign-up refused: %s", exc.message)
            raise bad_form(N_("Something in the form cannot be used.")) from None
    context.mailer.wake()
    return context.shell.page(
        202,
        context.gettext("Check your inbox"),
        [
            context.gettext("If the address can be subscribed, a confirmation link is on its way."),
            context.gettext("Open it to start receiving the digest."),
            context.gettext(
                "Asked a few minutes ago already? The link we sent then still works: "
                "no second one is sent so soon."
            ),
        ],
        wants_json=request.wants_json,
        state="check-inbox",
    )


def _confirm_link(context: WebContext, token: str) -> ConfirmLink:
    try:
        return read_confirm_token(context.secret, token)
    except BadInputError as exc:
        if "expired" in exc.message:
            raise _expired() from None
        raise invalid_link() from None


def _expired() -> HttpError:
    days = CONFIRM_MAX_AGE // 86400
    return HttpError(
        400,
        N_("This link has expired"),
        N_("Confirmation links work for %(days)d days: subscribe again to get a new one."),
        values={"days": days},
    )


def _not_confirmable(context: WebContext, request: Request, check: LinkCheck) -> Response:
    row = check.subscriber
    if row is None:
        raise not_on_list(context)
    if check.state is LinkState.ACTIVE:
        return context.shell.page(
            200,
            context.gettext("Already subscribed"),
            [
                context.gettext(
                    "%(email)s already receives the digest of %(title)s.",
                    email=mask_email(row.email),
                    title=context.site_title,
                )
            ],
            wants_json=request.wants_json,
            state="active",
        )
    if check.state is LinkState.EXPIRED:
        raise _expired()
    raise HttpError(
        400,
        N_("This link is no longer valid"),
        N_(
            "It was used already, or the subscription changed after it was sent: "
            "subscribe again to get a new one."
        ),
    )
