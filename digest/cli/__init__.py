"""The `digest` command: the group from app, each command family from its own module."""

from __future__ import annotations

# Each module adds its commands to `cli` when imported.
from digest.cli import (  # noqa: F401
    db_cmds,
    demo_cmds,
    posts_cmds,
    preview_cmds,
    schedule_cmds,
    send_cmds,
    serve_cmds,
    subscribers_cmds,
)
from digest.cli.app import cli


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")


__all__ = ["cli", "main"]
