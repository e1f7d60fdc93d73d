"""The `digest` command: the group from app, each command family from its own module."""

from __future__ import annotations

import importlib

from digest.cli.app import cli

# Each module adds its commands to `cli` when imported.
for _name in (
    "posts_cmds",
    "preview_cmds",
    "subscribers_cmds",
    "send_cmds",
    "schedule_cmds",
    "db_cmds",
    "demo_cmds",
    "serve_cmds",
):
    try:
        importlib.import_module(f"digest.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command family not written yet
        if exc.name != f"digest.cli.{_name}":
            raise


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")


__all__ = ["cli", "main"]
