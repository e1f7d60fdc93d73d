"""The relay webhook route of `digest serve`: POST /webhooks/<provider>[/<secret>].

web ─► bounces.webhooks (authenticate, read, act); this module only turns HTTP into that call.
"""

from __future__ import annotations

import logging

from digest.web.context import WebContext
from digest.web.forms import Request
from digest.web.pages import Response, not_found

log = logging.getLogger("digest.web")

# SNS messages reach 256 KB, and SendGrid batches events: more room than a sign-up form.
WEBHOOK_MAX_BODY = 1024 * 1024


def _headers(request: Request) -> dict[str, str]:
    """The request's HTTP headers by their usual names (Authorization, X-Twilio-...)."""
    environ = request.environ
    headers = {
        key[5:].replace("_", "-").title(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = str(environ["CONTENT_TYPE"])
    return headers


def relay_webhook(context: WebContext, request: Request) -> Response:
    """Hand the call to the bounce side; a refusal changes nothing and answers 401/403."""
    if context.webhooks is None:
        raise not_found()
    provider = request.path_values.get("provider", "")
    answer = context.webhooks.handle(
        provider,
        body=request.body,
        headers=_headers(request),
        path_secret=request.path_values.get("secret"),
    )
    if answer.status >= 400:
        log.warning("webhook %s refused (%d): %s", provider, answer.status, answer.text)
    return Response(answer.status, (answer.text + "\n").encode(), "text/plain; charset=utf-8")
