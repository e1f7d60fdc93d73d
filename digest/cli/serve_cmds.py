"""`digest serve [--host H] [--port P]`: the HTTP side (unsubscribe, one-click, sign-up).

cli is a thin door: web builds the WSGI app and the server; this wires config, store and logs.
"""

from __future__ import annotations

import logging

import click

from digest.cli.app import State, pass_state
from digest.store import open_store
from digest.tokens import check_secret
from digest.web import make_server_for, serve


def _access_log_at_info() -> None:
    """One line per request is what a server's log is for: show INFO even without -v."""
    for name in ("digest.web", "digest.web.access"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@pass_state
def serve_cmd(state: State, host: str, port: int) -> None:
    """Serve the sign-up, confirmation, preferences and unsubscribe pages, and more.

    GET / and /subscribe (the sign-up page; POST /subscribe signs up), /confirm/<token> (the
    link of the confirmation mail), /preferences/<token> (digests, categories, name, pause),
    /unsubscribe/<token> (GET shows a page, POST unsubscribes, RFC 8058 one-click included),
    with web.archive: /archive, /archive/<digest>/<run> and /archive/<digest>.atom; relay
    webhooks under /webhooks/<provider>; GET /healthz.

    Runs on waitress and sends queued confirmation emails in the background. Put it behind a
    TLS reverse proxy at web.base_url. SIGTERM or SIGINT stops it.
    """
    settings = state.settings
    check_secret(settings.web.secret.get_secret_value())
    _access_log_at_info()
    with open_store(settings.database.url) as store:
        server = make_server_for(settings, store, host, port)
        bound_host, bound_port = server.address
        click.echo(
            f"serving on http://{bound_host!s}:{bound_port} "
            f"(public address {settings.web.base_url}); Ctrl-C to stop",
            err=True,
        )
        serve(server)
