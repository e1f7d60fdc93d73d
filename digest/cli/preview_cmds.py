"""`digest preview`: render a digest as it would go out, without sending or recording anything.

cli door: parse the options, call preview.build_preview, print its notes and write the result.
"""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.app import State, as_of_option, parse_as_of, pass_state
from digest.delivery.preview import build_preview
from digest.errors import BadInputError


@click.command("preview")
@click.argument("name")
@as_of_option
@click.option(
    "--subscriber",
    "subscriber_email",
    metavar="EMAIL",
    help="Personalise for this subscriber and show only their share (their categories).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@click.option("--text", "as_text", is_flag=True, help="The text/plain part instead of the HTML.")
@pass_state
def preview(
    state: State,
    name: str,
    as_of: str | None,
    subscriber_email: str | None,
    out: Path | None,
    as_text: bool,
) -> None:
    """Render digest NAME (inlined HTML, or the text part) without sending or recording anything.

    When nothing is new it shows the latest posts instead, with a note on stderr.
    """
    settings = state.settings
    settings.digest(name)  # an unknown name fails before any work
    when = parse_as_of(as_of, settings.site.tz)
    result = build_preview(settings, name, as_of=when, subscriber_email=subscriber_email)
    for note in result.notes:
        click.echo(note, err=True)
    if result.segment is None:
        return
    body = result.text if as_text else result.html
    if out is None:
        click.echo(body, nl=not body.endswith("\n"))
        return
    try:
        out.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{out}: cannot write the preview: {exc.strerror or exc}") from exc
    size = len(body.encode("utf-8"))
    click.echo(
        f"wrote {out} ({'text' if as_text else 'html'}, {size:,} bytes, "
        f"{len(result.posts)} post{'' if len(result.posts) == 1 else 's'}): "
        f"{result.segment.subject}"
    )
