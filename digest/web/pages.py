"""The page shell of `digest serve`: the HTML wrapper (or JSON) every answer is drawn in.

web's handlers return a Response built here; an HttpError becomes an error page the same way.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

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
REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_STYLE = """
body{margin:0;background:#f4f4f5;color:#18181b;font:16px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.35rem;margin:0 0 1rem}
p{margin:0 0 1rem}
.site{color:#71717a;font-size:.9rem;margin-bottom:1.5rem}
button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:8px;background:#2563eb;
color:#fff;cursor:pointer}
button:hover{background:#1d4ed8}
label{display:block;margin:.5rem 0 .2rem;font-size:.9rem}
input{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #d4d4d8;
border-radius:6px;margin-bottom:.5rem}
a{color:#2563eb}
""".replace("\n", "")


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
    """The site's frame around every page: its title in the tab and a link home."""

    site_title: str
    root_url: str

    def page(
        self,
        status: int,
        title: str,
        paragraphs: Iterable[str],
        *,
        button: str | None = None,
        form_fields: str = "",
        wants_json: bool = False,
        state: str = "",
    ) -> Response:
        """An HTML page (title, escaped paragraphs, an optional POST button), or its JSON."""
        texts = list(paragraphs)
        if wants_json:
            body = {"ok": status < 400, "status": state or title, "message": " ".join(texts)}
            return Response(status, json.dumps(body).encode(), "application/json")
        e = html.escape
        parts = "".join(f"<p>{e(t)}</p>" for t in texts)
        if button:
            # No action attribute: the form posts back to this very URL, token included.
            parts += (
                f'<form method="post">{form_fields}'
                f'<button type="submit">{e(button)}</button></form>'
            )
        site = e(self.site_title)
        doc = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{e(title)} · {site}</title><style>{_STYLE}</style></head>"
            f'<body><main><div class="site"><a href="{e(self.root_url)}/">{site}</a></div>'
            f"<h1>{e(title)}</h1>{parts}</main></body></html>"
        )
        return Response(status, doc.encode("utf-8"))

    def error(self, exc: HttpError, wants_json: bool) -> Response:
        """The page (or JSON) for an HttpError, with its extra headers."""
        response = self.page(exc.status, exc.title, [exc.message], wants_json=wants_json)
        response.headers.extend(exc.headers)
        return response


def mask_email(address: str) -> str:
    """`j***@example.com`: enough for the owner to recognise, little for anyone else."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"
