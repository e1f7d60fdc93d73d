"""The preferences page of `digest serve`: GET shows a subscriber's choices, POST saves them.

web's routes send /preferences/<token> here; store.preferences reads and saves, in one call each.
The token in the path names the subscriber (bound to their link key, like an unsubscribe
link); the form carries a second, timed token bound to the same subscriber, so a page on
another site cannot post the form. No cookies are set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from digest.errors import BadInputError
from digest.i18n import N_, format_date
from digest.sources.post import distinct_categories
from digest.store.models import ACTIVE, utcnow
from digest.store.preferences import PAUSE_WEEKS, PreferencesChange
from digest.store.preferences import save_preferences as store_preferences
from digest.store.signups import unsubscribe_id
from digest.store.subscribers import (
    IMPORT_PREFIX,
    WEB_SOURCE,
    Consent,
    SubscriberRow,
    clean_timezone,
)
from digest.tokens import PreferencesLink, form_token, form_token_holds, read_preferences_token
from digest.web.context import WebContext
from digest.web.forms import Request, check_name, checked_categories, form_fields
from digest.web.links import (
    current_link,
    linked_subscriber,
    not_on_list,
    not_subscribed_page,
    read_link,
    unsubscribed_page,
)
from digest.web.pages import HttpError, Response, bad_form, json_answer, mask_email

log = logging.getLogger("digest.web")

TEMPLATE = "web/preferences.html.j2"
KEEP_PAUSE = "keep"
NO_PAUSE = "none"
SAVE = "save"
UNSUBSCRIBE_ALL = "unsubscribe"
SAVED = N_("Saved. Your next digest follows these choices.")


def preferences_page(context: WebContext, request: Request) -> Response:
    """GET: the subscriber's digests, categories, name and pause in a form; nothing changes."""
    link = read_link(context, read_preferences_token, request.token)
    row = linked_subscriber(context, link.subscriber_id, link.link_key)
    if row.status != ACTIVE:
        return not_subscribed_page(context, request, row)
    if request.wants_json:
        return json_answer(200, "active", "", preferences=_as_json(context, row))
    return _form_page(context, row, 200)


def save_preferences(context: WebContext, request: Request) -> Response:
    """POST: save the form (the next run uses it), or unsubscribe from everything."""
    link = read_link(context, read_preferences_token, request.token)
    fields = form_fields(request)
    row = linked_subscriber(context, link.subscriber_id, link.link_key)
    sent_token = " ".join(fields.get("form_token", []))
    if not form_token_holds(context.secret, sent_token, row.id, link.link_key):
        raise HttpError(
            400,
            N_("This form has expired"),
            N_("Open the link from your email again, then make your changes."),
        )
    if row.status != ACTIVE:
        return not_subscribed_page(context, request, row)
    if UNSUBSCRIBE_ALL in fields.get("action", []):
        return _unsubscribe_all(context, request, link)
    change = _read_change(context, fields, row, utcnow())
    try:
        with current_link():
            saved = store_preferences(context.store, row.id, link.link_key, change)
    except BadInputError as exc:
        # The form was checked above: this is unexpected.
        log.warning("preferences of subscriber %d refused: %s", row.id, exc.message)
        raise bad_form(N_("Something in the form cannot be used.")) from None
    if saved is None:
        raise not_on_list(context)
    log.info("subscriber %d saved preferences", saved.id)
    notice = context.gettext(SAVED)
    if request.wants_json:
        return json_answer(200, "saved", notice, preferences=_as_json(context, saved))
    return _form_page(context, saved, 200, notice=notice)


def _read_change(
    context: WebContext, fields: Mapping[str, list[str]], row: SubscriberRow, now: datetime
) -> PreferencesChange:
    every = context.digest_names
    known = distinct_categories([*context.categories(), *row.categories])
    digests = [d.strip() for d in fields.get("digests", []) if d.strip()]
    unknown = sorted(set(digests) - set(every))
    if unknown:
        raise bad_form(N_("There is no digest %(name)s."), name=repr(unknown[0]))
    if not digests:
        raise bad_form(
            N_("Choose at least one digest, or unsubscribe from everything at the bottom.")
        )
    pause = " ".join(fields.get("pause", [])).strip() or KEEP_PAUSE
    until: datetime | None = None
    if pause not in (KEEP_PAUSE, NO_PAUSE):
        # ASCII digits only: "²" is a digit to isdigit() but not to int().
        weeks = int(pause) if pause.isascii() and pause.isdigit() else 0
        if weeks not in PAUSE_WEEKS:
            raise bad_form(N_("Pause for 1, 2 or 4 weeks."))
        until = now + timedelta(weeks=weeks)
    zone = " ".join(fields.get("timezone", [])).strip() if "timezone" in fields else None
    if zone:
        try:
            clean_timezone(zone)
        except BadInputError:
            raise bad_form(
                N_("Unknown time zone %(name)s: use a name like Europe/London."), name=repr(zone)
            ) from None
    names = [n for n in fields.get("name", []) if n.strip()]
    return PreferencesChange(
        name=check_name(names[0]) if names else "",
        categories=checked_categories(fields.get("categories", []), known),
        digests=None if set(digests) == set(every) else digests,
        pause_until=until,
        resume=pause == NO_PAUSE,
        timezone=zone,
    )


def _unsubscribe_all(context: WebContext, request: Request, link: PreferencesLink) -> Response:
    with current_link():
        row = unsubscribe_id(context.store, link.subscriber_id, link.link_key, reason="preferences")
    if row is None:
        raise not_on_list(context)
    log.info("subscriber %d unsubscribed (preferences)", row.id)
    return unsubscribed_page(context, request, row)


def _form_page(
    context: WebContext, row: SubscriberRow, status: int, *, notice: str = ""
) -> Response:
    settings = context.settings
    now = utcnow()
    chosen = {c.casefold() for c in row.categories}
    categories = distinct_categories([*context.categories(), *row.categories])
    on = set(row.digest_names(context.digest_names))
    paused = row.paused_until is not None and row.paused_until > now
    values: dict[str, Any] = {
        "title": context.gettext("Manage your subscription"),
        "email": mask_email(row.email),
        "name": row.name,
        "notice": notice,
        "categories": [(c, c.casefold() in chosen) for c in categories],
        "digests": [
            (name, context.digest_title(name), name in on) for name in context.digest_names
        ],
        "paused_until": (
            format_date(row.paused_until, settings.site.lang, settings.site.tz)
            if row.paused_until and paused
            else ""
        ),
        "pause_weeks": PAUSE_WEEKS,
        "timezone": row.timezone or "",
        "site_timezone": settings.site.timezone,
        "form_token": form_token(context.secret, row.id, row.link_key),
        "consent": consent_text(context, row.consent),
    }
    return context.shell.render(status, TEMPLATE, values)


def consent_text(context: WebContext, consent: Consent) -> str:
    """The subscriber's own consent record in a sentence, in the site's language."""
    site = context.settings.site

    def day(when: datetime) -> str:
        return format_date(when, site.lang, site.tz)

    source = consent.source or ""
    asked = consent.requested_at
    if asked is None:
        return context.gettext(
            "There is no record of how this address was added: it came before the list kept one."
        )
    if source == WEB_SOURCE:
        if consent.confirmed_at is None:
            return context.gettext(
                "You asked for it on %(asked)s on the sign-up page.", asked=day(asked)
            )
        return context.gettext(
            "You asked for it on %(asked)s on the sign-up page and confirmed it on "
            "%(confirmed)s with the link we sent you.",
            asked=day(asked),
            confirmed=day(consent.confirmed_at),
        )
    if source.startswith(IMPORT_PREFIX):
        service = source.removeprefix(IMPORT_PREFIX).capitalize() or "CSV"
        if consent.confirmed_at is None:
            return context.gettext(
                "This address came from %(service)s, where it was signed up on %(asked)s.",
                service=service,
                asked=day(asked),
            )
        return context.gettext(
            "This address came from %(service)s, where it was signed up on %(asked)s and "
            "confirmed on %(confirmed)s.",
            service=service,
            asked=day(asked),
            confirmed=day(consent.confirmed_at),
        )
    return context.gettext(
        "The owner of the list added this address on %(asked)s.", asked=day(asked)
    )


def _as_json(context: WebContext, row: SubscriberRow) -> dict[str, Any]:
    return {
        "consent": row.consent.as_dict(),
        "digests": row.digest_names(context.digest_names),
        "categories": list(row.categories),
        "name": row.name,
        "paused_until": row.paused_until.isoformat() if row.paused_until else None,
    }
