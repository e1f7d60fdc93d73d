"""The pages of `digest serve`: every answer drawn from a template in templates/web (or as JSON).

web's handlers return a Response built here; an HttpError becomes an error page the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2

from digest.i18n import N_, text_direction, translations

# The one script a page runs: the sign-up form's hidden `timezone` field gets the browser's
# zone (deliver: local_time). Allowed by its hash alone; nothing is loaded.
TIMEZONE_SCRIPT = (
    'var z=document.getElementById("timezone");'
    'try{z.value=Intl.DateTimeFormat().resolvedOptions().timeZone||""}catch(e){}'
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(TIMEZONE_SCRIPT.encode()).digest()).decode()
_LOAD_NOTHING = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Pages load nothing: no scripts but that one, no images, no fonts; their styles are inline.
PAGE_CSP = f"{_LOAD_NOTHING}; script-src 'sha256-{_SCRIPT_HASH}'"
# An archived email shows the posts' images (https, or inlined as data:) and runs no script.
ARCHIVE_CSP = _LOAD_NOTHING + "; img-src https: data:"
SECURITY_HEADERS = [
    ("Content-Security-Policy", PAGE_CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
]
PAGE_TEMPLATE = "web/page.html.j2"


# The JSON answer's `status` of each error: a stable code for scripts, never a sentence.
ERROR_CODES = {
    "Not found": "not-found",
    "Method not allowed": "method-not-allowed",
    "This link is not valid": "invalid-link",
    "This link has expired": "link-expired",
    "This link is no longer valid": "link-void",
    "Please check the form": "invalid-form",
    "Email address needed": "invalid-form",
    "Too many categories": "invalid-form",
    "Too large": "too-large",
    "Bad request": "bad-request",
    "Length required": "length-required",
    "Unsupported form": "unsupported-form",
    "This form has expired": "form-expired",
    "Try again later": "unavailable",
    "Something went wrong": "error",
}


def error_code(title: str) -> str:
    """The stable code of an error title (its words, lower case and hyphenated, if unlisted)."""
    return ERROR_CODES.get(title) or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class HttpError(Exception):
    """A request we answer with an error page: its status, a title and a message.

    Title and message are catalog messages (marked with N_ where they are made), shown in the
    site's language with their %(name)s placeholders filled from `values`. The JSON answer's
    `status` is a stable code (ERROR_CODES: `not-found`, `invalid-form`...), the same in every
    language.
    """

    def __init__(
        self,
        status: int,
        title: str,
        message: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        values: Mapping[str, object] | None = None,
        state: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = list(headers)
        self.values = dict(values or {})
        self.state = state or error_code(title)


def method_not_allowed(methods: Iterable[str]) -> HttpError:
    """405 naming the methods the address answers, in its Allow header too."""
    allowed = ", ".join(methods)
    return HttpError(
        405,
        N_("Method not allowed"),
        N_("This address answers %(methods)s only."),
        [("Allow", allowed)],
        values={"methods": allowed},
    )


def not_found() -> HttpError:
    """404 for an address with no page."""
    return HttpError(404, N_("Not found"), N_("There is no page at this address."))


def invalid_link() -> HttpError:
    """400 for a token that does not verify."""
    return HttpError(
        400,
        N_("This link is not valid"),
        N_("The link is incomplete or was changed. Copy the whole link from the email."),
    )


def bad_form(message: str, **values: object) -> HttpError:
    """400 "Please check the form", saying what to change (a catalog message)."""
    return HttpError(400, N_("Please check the form"), message, values=values)


@dataclass
class Response:
    """A page (or JSON) to send back; `body` is bytes already."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PageShell:
    """The site's frame around every page: its title, language and colours, from templates."""

    site_title: str
    root_url: str
    templates: jinja2.Environment
    lang: str = "en"

    def gettext(self, message: str, **values: object) -> str:
        """The message in the page's language, its %(name)s placeholders filled."""
        text = translations(self.lang).gettext(message) if message else ""
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, num: int, **values: object) -> str:
        """The singular or plural message for `num` (its %(num)d) in the page's language."""
        return translations(self.lang).ngettext(singular, plural, num) % {"num": num, **values}

    def render(self, status: int, template: str, values: Mapping[str, Any]) -> Response:
        """A page from `template` (under templates/web) with the site's values added."""
        context = {
            "site_title": self.site_title,
            "root_url": self.root_url,
            "lang": self.lang,
            "dir": text_direction(self.lang),
            **values,
        }
        body = self.templates.get_template(template).render(context)
        return Response(status, body.encode("utf-8"))

    def page(
        self,
        status: int,
        title: str,
        paragraphs: Iterable[str],
        *,
        button: str | None = None,
        hidden: Mapping[str, str] | None = None,
        wants_json: bool = False,
        state: str = "",
        links: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """A message page (title, paragraphs, links as (url, text), an optional POST button),
        or its JSON (the links as `links`: a list of {url, text}).

        Title, paragraphs, links and button are shown as given: translated by the caller.
        """
        texts, hrefs = list(paragraphs), list(links)
        if wants_json:
            extra = {"links": [{"url": u, "text": t} for u, t in hrefs]} if hrefs else {}
            return json_answer(status, state or error_code(title), " ".join(texts), **extra)
        values = {
            "title": title,
            "paragraphs": texts,
            "links": hrefs,
            "button": button,
            "hidden": hidden or {},
        }
        return self.render(status, PAGE_TEMPLATE, values)

    def error(self, exc: HttpError, wants_json: bool) -> Response:
        """The page (or JSON) for an HttpError, in the page's language, with its headers."""
        response = self.page(
            exc.status,
            self.gettext(exc.title, **exc.values),
            [self.gettext(exc.message, **exc.values)],
            wants_json=wants_json,
            state=exc.state,
        )
        response.headers.extend(exc.headers)
        return response


def json_answer(status: int, state: str, message: str, **extra: Any) -> Response:
    """The JSON answer for fetch() callers: ok, status (a short state word) and message."""
    body = {"ok": status < 400, "status": state, "message": message, **extra}
    return Response(status, json.dumps(body).encode(), "application/json")


def mask_email(address: str) -> str:
    """`j***@example.com`: enough for the owner to recognise, little for anyone else."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"
