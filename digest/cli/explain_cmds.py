"""`digest explain`: why each post is in or out of a digest at a time, and of a subscriber's share.

cli door: parse the options, call selection.newposts.explain_digest, print a table or JSON.
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


@click.command("explain")
@click.argument("name")
@as_of_option
@click.option(
    "--subscriber",
    "subscriber_email",
    metavar="EMAIL",
    help="Also say whether this subscriber gets each post, and why not.",
)
@table_or_json_option
@pass_state
def explain_cmd(
    state: State, name: str, as_of: str | None, subscriber_email: str | None, fmt: str
) -> None:
    """Why each post of the site is in or out of digest NAME at time T."""
    from digest.selection.newposts import explain_digest
    from digest.store import open_store

    settings = state.settings
    settings.digest(name)  # an unknown name fails before any work
    when = parse_as_of(as_of, settings.site.tz)
    store = open_store(settings.database.url)
    try:
        result = explain_digest(
            settings, store, name, as_of=when, subscriber_email=subscriber_email
        )
    finally:
        store.dispose()
    if fmt == "json":
        echo_json(result.as_json())
        return
    if result.reader is not None:
        r = result.reader
        digests = ", ".join(r.digests) or "none"
        categories = ", ".join(r.categories) or "all"
        paused = f", paused until {r.paused_until.isoformat()}" if r.paused_until else ""
        click.echo(
            f"subscriber {r.email}: {r.status}, digests: {digests}, categories: {categories}"
            f"{paused}, timezone: {r.timezone or settings.site.timezone}"
        )
    included = sum(v.included for v in result.verdicts)
    click.echo(f"{name} as of {when.isoformat(timespec='minutes')}: {included} in")
    width = max((len(v.reason) for v in result.verdicts), default=3)
    for v in result.verdicts:
        when_text = f"{v.date:%Y-%m-%d %H:%M}" if v.date else "-" * 16
        verdict = "in " if v.included else "out"
        click.echo(f"{verdict}  {v.reason:<{width}}  {when_text}  {v.title or v.path}")
        notes = [v.detail] if v.detail else []
        if v.for_subscriber is not None:
            notes.append(
                "the subscriber gets it"
                if v.for_subscriber
                else f"not for the subscriber: {v.subscriber_reason}"
                if v.subscriber_reason
                else ""
            )
        note = "; ".join(n for n in notes if n)
        if note:
            click.echo(f"     {note}")
