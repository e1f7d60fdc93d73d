"""Reading a request for `digest serve`: its size-capped body, form fields, the sign-up form.

web's routes build a Request here (werkzeug parses the form); anything unreadable is an
HttpError (400, 411, 413, 415).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from werkzeug.exceptions import HTTPException

from digest.addresses import (
    MAX_NAME_LENGTH,
    clean_name,
    has_control_character,
    normalise_email,
)
from digest.i18n import N_
from digest.store.import_formats import split_category_list
from digest.web.pages import HttpError, bad_form

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

    import flask

MAX_BODY = 64 * 1024
MAX_FIELDS = 200
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 100
# A field people never see (hidden in the page) that form-filling robots fill in.
HONEYPOT_FIELD = "website"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Request:
    """What a handler needs of a request: a POST's form is read before it is called."""

    environ: WSGIEnvironment
    method: str
    wants_json: bool
    token: str = ""  # the signed token from the path, on the routes that carry one
    path_values: Mapping[str, str] = field(default_factory=dict)  # the path's other parts
    fields: Mapping[str, list[str]] = field(default_factory=dict)
    is_form: bool = False  # sent as a form (urlencoded or multipart), not as something else
    body: bytes = b""  # the raw body, on the routes that take one whole (relay webhooks)


@dataclass(frozen=True)
class SignupForm:
    """The fields of POST /subscribe, checked for presence and size."""

    email: str
    name: str | None
    categories: list[str]
    digests: list[str]
    honeypot_filled: bool = False
    timezone: str | None = None  # the browser's IANA zone (filled by the page), if usable


def wants_json(environ: WSGIEnvironment) -> bool:
    """True when the client asks for JSON and not for HTML."""
    accept = str(environ.get("HTTP_ACCEPT", ""))
    return "application/json" in accept and "text/html" not in accept


def check_body(environ: WSGIEnvironment, max_body: int) -> None:
    """HttpError unless the body can be read: 411 for an unread chunked body, 413 beyond
    max_body, 400 for a Content-Length that is not a number."""
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        # The server passed the chunks on undecoded (waitress decodes them): refuse, never
        # read the body as empty.
        raise HttpError(
            411, N_("Length required"), N_("Send the request body with a Content-Length.")
        )
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, N_("Bad request"), N_("The Content-Length is not a number.")) from None
    if length > max_body:
        raise HttpError(
            413,
            N_("Too large"),
            N_("The request body is over %(bytes)d bytes."),
            values={"bytes": max_body},
        )


def read_raw_body(request: flask.Request, max_body: int) -> bytes:
    """A POST's body as sent (a relay's signed JSON), at most max_body bytes."""
    check_body(request.environ, max_body)
    request.max_content_length = max_body
    try:
        return request.get_data(cache=False)
    except HTTPException as exc:
        raise HttpError(
            exc.code or 400, N_("Bad request"), N_("The body could not be read.")
        ) from None


def read_fields(request: flask.Request, max_body: int) -> tuple[dict[str, list[str]], bool]:
    """A POST's form fields (files ignored) and whether it came as a form at all.

    werkzeug parses form-encoded and multipart bodies; a body without a Content-Type (a
    browser form with no fields, some one-click senders) is read as form-encoded.
    """
    check_body(request.environ, max_body)
    request.max_content_length = max_body
    request.max_form_parts = MAX_FIELDS
    kind = request.mimetype
    unreadable = HttpError(
        400, N_("Bad request"), N_("The form data could not be read (not UTF-8?).")
    )
    try:
        body = request.get_data(cache=True)
        if kind == FORM_TYPES[0] or not kind:
            body.decode("utf-8")  # werkzeug would replace bad bytes: refuse them instead
        if kind in FORM_TYPES:
            return {name: request.form.getlist(name) for name in request.form}, True
    except UnicodeDecodeError:
        raise unreadable from None
    except HTTPException as exc:  # werkzeug's 413 (too many parts) or 400 (broken multipart)
        raise HttpError(
            exc.code or 400, N_("Bad request"), N_("The form data could not be read.")
        ) from None
    if kind:
        return {}, False
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise unreadable from None
    return parsed, True


def split_categories(values: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """Categories from repeated fields, each a list separated by `;` or `,` (the rule of CSV
    imports too: "Machine Learning" is one category); a value that is one of the `known`
    categories (a checkbox) is kept whole."""
    whole = {name.casefold() for name in known}
    out: list[str] = []
    for value in values:
        if value.strip().casefold() in whole:
            out.append(value.strip())
        else:
            out.extend(split_category_list(value))
    return out


def form_fields(request: Request, *, required: bool = False) -> Mapping[str, list[str]]:
    """The form's fields; with required, 415 when the body was not sent as a form."""
    if required and not (request.is_form and _content_type(request)):
        raise HttpError(
            415,
            N_("Unsupported form"),
            N_("Send the form as application/x-www-form-urlencoded or multipart/form-data."),
        )
    return request.fields


def _content_type(request: Request) -> str:
    return str(request.environ.get("CONTENT_TYPE", "")).strip()


def checked_categories(values: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """Categories as sent (checkboxes or a typed list); 400 when too many, too long or with
    a control character."""
    categories = split_categories(values, known)
    if len(categories) > MAX_CATEGORIES or any(len(c) > MAX_CATEGORY_LENGTH for c in categories):
        raise HttpError(
            400, N_("Too many categories"), N_("Please choose fewer, shorter categories.")
        )
    if any(has_control_character(c) for c in categories):
        raise bad_form(N_("A category contains a control character (a line break?)."))
    return categories


def check_email(value: str) -> str:
    """The address as typed, when it can be stored; else 400 saying why, in the site's words."""
    if has_control_character(value):
        raise bad_form(N_("The email address contains a control character (a line break?)."))
    try:
        normalise_email(value)
    except ValueError:
        raise bad_form(N_("“%(email)s” is not a valid email address."), email=value) from None
    return value


def check_name(value: str) -> str:
    """The name as typed, when it can be stored; else 400 saying why, in the site's words."""
    if has_control_character(value):
        raise bad_form(N_("The name contains a control character (a line break?)."))
    try:
        clean_name(value)
    except ValueError:
        raise bad_form(
            N_("The name is longer than %(num)d characters."), num=MAX_NAME_LENGTH
        ) from None
    return value


def read_signup(request: Request, known_categories: Iterable[str] = ()) -> SignupForm:
    """The sign-up form's email, optional name, categories and digests; 400 when unusable."""
    fields = form_fields(request, required=True)
    email = " ".join(fields.get("email", [])).strip()
    if not email:
        raise HttpError(400, N_("Email address needed"), N_("Please give an email address."))
    check_email(email)
    names = [check_name(n) for n in fields.get("name", []) if n.strip()]
    categories = checked_categories(fields.get("categories", []), known_categories)
    digests = [d.strip() for d in fields.get("digests", []) if d.strip()]
    trap = any(value.strip() for value in fields.get(HONEYPOT_FIELD, []))
    zone = browser_timezone(" ".join(fields.get("timezone", [])))
    return SignupForm(email, names[0] if names else None, categories, digests, trap, zone)


def browser_timezone(value: str) -> str | None:
    """The zone the page's script read from the browser, if it is a real IANA name; a wrong
    one is dropped (the subscriber gets site.timezone), never an error for the person."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone = value.strip()
    if not zone or len(zone) > 64 or has_control_character(zone):
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return zone
