"""A subscriber's signed link, checked in one place for the unsubscribe and preferences pages.

web's handlers and preferences ─► links ─► store.signups: the token read, the subscriber it
names, and the answers when it names nobody (erased) or an earlier subscription (stale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from digest.errors import BadInputError
from digest.i18n import N_
from digest.store.signups import StaleLinkError, subscriber_for_link
from digest.store.subscribers import SubscriberRow
from digest.web.context import WebContext
from digest.web.forms import Request
from digest.web.pages import HttpError, Response, invalid_link, mask_email

Link = TypeVar("Link")


def read_link(context: WebContext, read: Callable[[str, str], Link], token: str) -> Link:
    """What the token in the path says (read with the site's secret), or 400."""
    try:
        return read(context.secret, token)
    except BadInputError:
        raise invalid_link() from None


def stale_link() -> HttpError:
    """400 for a link made for an earlier subscription of the address."""
    return HttpError(
        400,
        N_("This link is no longer valid"),
        N_("It was made for an earlier subscription. Use the link in a newer email."),
    )


def not_on_list(context: WebContext) -> HttpError:
    """404 for a link whose subscriber was erased (or never existed)."""
    return HttpError(
        404,
        N_("Not on the list"),
        N_("This address is not on the %(title)s mailing list (any more)."),
        values={"title": context.site_title},
        state="unknown",
    )


@contextmanager
def current_link() -> Iterator[None]:
    """Around a store call made with a link: a stale link (StaleLinkError) becomes the 400."""
    try:
        yield
    except StaleLinkError:
        raise stale_link() from None


def linked_subscriber(
    context: WebContext, subscriber_id: int, link_key: str | None
) -> SubscriberRow:
    """The subscriber a link names; 404 when erased, 400 when the link is stale."""
    with current_link():
        row = subscriber_for_link(context.store, subscriber_id, link_key)
    if row is None:
        raise not_on_list(context)
    return row


def unsubscribed_page(
    context: WebContext, request: Request, row: SubscriberRow, digest: str = ""
) -> Response:
    """ "You are unsubscribed": after leaving the link's `digest` (the last one), or everything."""
    email, title = mask_email(row.email), context.site_title
    if digest:
        gone = context.gettext(
            "%(email)s left “%(digest)s” and will get no more emails from %(title)s.",
            email=email,
            digest=context.digest_title(digest),
            title=title,
        )
    else:
        gone = context.gettext(
            "%(email)s will get no more emails from %(title)s.", email=email, title=title
        )
    return context.shell.page(
        200,
        context.gettext("You are unsubscribed"),
        [gone, context.gettext("Changed your mind?")],
        links=[(subscribe_url(context), context.gettext("Subscribe again"))],
        wants_json=request.wants_json,
        state="unsubscribed",
    )


def subscribe_url(context: WebContext) -> str:
    """The sign-up page's address (web.base_url/subscribe)."""
    return f"{context.settings.web.base_url}/subscribe"


def not_subscribed_page(context: WebContext, request: Request, row: SubscriberRow) -> Response:
    """The page for a link of someone unsubscribed or bounced: nothing to change here."""
    return context.shell.page(
        200,
        context.gettext("Not subscribed"),
        [
            context.gettext(
                "%(email)s gets no emails from %(title)s.",
                email=mask_email(row.email),
                title=context.site_title,
            ),
        ],
        links=[(subscribe_url(context), context.gettext("Subscribe again"))],
        wants_json=request.wants_json,
        state=row.status,
    )
