"""Reading a request for `digest serve`: its size-capped body, form fields, the sign-up form.

web's handlers get a Request from here; anything unreadable is an HttpError (400, 413, 415).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from digest.web.pages import HttpError

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

MAX_BODY = 64 * 1024
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 100
# A field people never see (hidden in the page) that form-filling robots fill in.
HONEYPOT_FIELD = "website"
_SPLIT_CATEGORIES = re.compile(r"[,;\s]+")


@dataclass(frozen=True)
class Request:
    """What a handler needs of a request: the body is read (POST only) before it is called."""

    environ: WSGIEnvironment
    method: str
    body: bytes
    wants_json: bool
    token: str = ""  # the signed token from the path, on the routes that carry one

    @property
    def is_post(self) -> bool:
        """A POST changes something; GET and HEAD never do."""
        return self.method == "POST"


@dataclass(frozen=True)
class SignupForm:
    """The fields of POST /subscribe, checked for presence and size."""

    email: str
    name: str | None
    categories: list[str]
    honeypot_filled: bool = False


def wants_json(environ: WSGIEnvironment) -> bool:
    """True when the client asks for JSON and not for HTML."""
    accept = str(environ.get("HTTP_ACCEPT", ""))
    return "application/json" in accept and "text/html" not in accept


def read_body(environ: WSGIEnvironment, max_body: int) -> bytes:
    """The request body, at most max_body bytes (413 beyond; 411 for an unread chunked body)."""
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        # The server passed the chunks on undecoded (waitress decodes them): refuse, never
        # read the body as empty.
        raise HttpError(411, "Length required", "Send the request body with a Content-Length.")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, "Bad request", "The Content-Length is not a number.") from None
    if length > max_body:
        raise HttpError(413, "Too large", f"The request body is over {max_body} bytes.")
    if length <= 0:
        return b""
    data: bytes = environ["wsgi.input"].read(length)
    return data


def split_categories(values: Iterable[str]) -> list[str]:
    """Categories from repeated fields, each comma, semicolon or space separated."""
    return [part for value in values for part in _SPLIT_CATEGORIES.split(value) if part]


def form_fields(request: Request, *, required: bool = False) -> dict[str, list[str]]:
    """Fields of a form-encoded or multipart body; others are empty (or 415 when required)."""
    ctype = str(request.environ.get("CONTENT_TYPE", "")).strip()
    kind = ctype.split(";", 1)[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded" or (not kind and not required):
            return parse_qs(
                request.body.decode("utf-8"),
                keep_blank_values=True,
                max_num_fields=200,
                strict_parsing=False,
            )
        if kind == "multipart/form-data":
            return _multipart(ctype, request.body)
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


def read_signup(request: Request) -> SignupForm:
    """The sign-up form's email, optional name and categories; 400 when unusable."""
    fields = form_fields(request, required=True)
    email = " ".join(fields.get("email", [])).strip()
    if not email:
        raise HttpError(400, "Email address needed", "Please give an email address.")
    names = [n for n in fields.get("name", []) if n.strip()]
    categories = split_categories(fields.get("categories", []))
    if len(categories) > MAX_CATEGORIES or any(len(c) > MAX_CATEGORY_LENGTH for c in categories):
        raise HttpError(400, "Too many categories", "Please choose fewer, shorter categories.")
    trap = any(value.strip() for value in fields.get(HONEYPOT_FIELD, []))
    return SignupForm(email, names[0] if names else None, categories, trap)


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
