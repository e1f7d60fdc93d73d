"""`digest check`: fetch the URL and images of each post a digest would send now.

cli door: parse the options, call delivery.links.check_digest, print a table or JSON.
"""

from __future__ import annotations

import click

from digest.cli.app import (
    State,
    as_of_option,
    echo_json,
    parse_as_of,
    pass_state,
    table_or_json_option,
)
from digest.errors import EXIT_FAILED


@click.command("check")
@click.argument("name")
@as_of_option
@click.option(
    "--all-links", is_flag=True, help="Also every link of the rendered email, not only posts."
)
@table_or_json_option
@pass_state
def check_cmd(state: State, name: str, as_of: str | None, all_links: bool, fmt: str) -> None:
    """Fetch the URL and images of each post NAME would send now; exit 1 if a post is not live."""
    from digest.delivery.links import POST, check_digest
    from digest.store import open_store

    settings = state.settings
    settings.digest(name)
    when = parse_as_of(as_of, settings.site.tz)
    store = open_store(settings.database.url)
    try:
        results = check_digest(settings, store, name, as_of=when, all_links=all_links)
    finally:
        store.dispose()
    dead = [r for r in results if r.kind == POST and not r.ok]
    if fmt == "json":
        echo_json([r.as_dict() for r in results])
    elif not results:
        click.echo(
            f"{name}: no new posts as of {when.isoformat(timespec='minutes')}; nothing to check"
        )
    else:
        for r in results:
            mark = "ok  " if r.ok else "FAIL"
            click.echo(f"{mark}  {r.describe():<5}  {r.kind:<5}  {r.url}")
        bad = sum(not r.ok for r in results)
        click.echo(f"{name}: {len(results)} checked, {bad} not live")
    if dead:
        for r in dead:
            click.echo(f"error: {r.url} (post {r.post}) answers {r.describe()}", err=True)
        click.get_current_context().exit(EXIT_FAILED)
