"""The HTTP side (`digest serve`): unsubscribe, one-click, sign-up, confirmation, preferences.

web is a door: a Flask app that parses the request, makes one store call and shows a page.

`make_app(settings, store)` is a plain WSGI callable, so gunicorn or uwsgi can run it too;
`serve()` runs it on waitress, with the confirmation mailer (a background thread) beside it.
A GET never changes anything (mail link scanners prefetch every URL); every change is a POST,
with the signed token in the path as the only authority (RFC 8058 providers send no cookies),
answered 200 without redirect.

The package, outside in: `server` (make_app, waitress, signals), `routes` (the route table and
the Flask app), `handlers` (one function per method and page), `preferences` (the subscriber's
own page), `archive` (the archive pages), `links` (a subscriber's signed link checked),
`context` (what every handler may use), `mailer` (the confirmation mail queue's worker),
`forms` (request body and form fields), `clients` (the client's address), `site_categories`
(the categories of the posts), `pages` (templates/web pages in the site's language, Response,
HttpError).
"""

from __future__ import annotations

from digest.web.forms import split_categories
from digest.web.mailer import ConfirmationMailer
from digest.web.pages import HttpError, mask_email
from digest.web.routes import DigestWebApp, short_path
from digest.web.server import DigestServer, make_app, make_server_for, serve

__all__ = [
    "ConfirmationMailer",
    "DigestServer",
    "DigestWebApp",
    "HttpError",
    "make_app",
    "make_server_for",
    "mask_email",
    "serve",
    "short_path",
    "split_categories",
]
