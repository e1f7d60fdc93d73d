"""The `digest` command: the group from app; each command family lives in its own module.

app.COMMANDS maps command names to those modules, which load only when their command is used.
"""

from __future__ import annotations

from digest.cli.app import cli


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")


__all__ = ["cli", "main"]
