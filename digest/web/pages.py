"""The pages of `digest serve`: every answer drawn from a template in templates/web (or as JSON).

web's handlers return a Response built here; an HttpError becomes an error page the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2

from digest.i18n import text_direction

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
PAGE_TEMPLATE = "web/page.html.j2"


class HttpError(Exception):
    """A request we answer with an error page (its status and a message for the person)."""

    def __init__(
        self, status: int, title: str, message: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = list(headers)


def method_not_allowed(methods: Iterable[str]) -> HttpError:
    """405 naming the methods the address answers, in its Allow header too."""
    allowed = ", ".join(methods)
    return HttpError(
        405, "Method not allowed", f"This address answers {allowed} only.", [("Allow", allowed)]
    )


def not_found() -> HttpError:
    """404 for an address with no page."""
    return HttpError(404, "Not found", "There is no page at this address.")


def invalid_link() -> HttpError:
    """400 for a token that does not verify."""
    return HttpError(
        400,
        "This link is not valid",
        "The link is incomplete or was changed. Copy the whole link from the email.",
    )


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
    ) -> Response:
        """A message page (title, paragraphs, an optional POST button), or its JSON."""
        texts = list(paragraphs)
        if wants_json:
            return json_answer(status, state or title, " ".join(texts))
        values = {"title": title, "paragraphs": texts, "button": button, "hidden": hidden or {}}
        return self.render(status, PAGE_TEMPLATE, values)

    def error(self, exc: HttpError, wants_json: bool) -> Response:
        """The page (or JSON) for an HttpError, with its extra headers."""
        response = self.page(exc.status, exc.title, [exc.message], wants_json=wants_json)
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
