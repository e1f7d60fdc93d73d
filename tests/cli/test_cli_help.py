"""The command tree: every command and option explains itself, and the lazy map matches the code.

app.COMMANDS lists each command with its module and first help line; these tests keep it honest.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.cli.app import COMMANDS, DigestGroup


def walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
    """Every command under `command`, itself included, with its full name."""
    yield " ".join(path), command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{' '.join(path)} lists {name} but cannot load it"
            yield from walk(sub, (*path, name))


ALL_COMMANDS = dict(walk(cli, ("digest",)))


def first_paragraph(text: str | None) -> str:
    return " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())


def test_the_tree_has_every_command() -> None:
    # A guard that the walk itself works: subgroup commands are in it.
    assert {"digest send", "digest db upgrade", "digest subscribers add"} <= set(ALL_COMMANDS)


@pytest.mark.parametrize("full_name", sorted(ALL_COMMANDS))
def test_every_command_and_option_has_help(full_name: str) -> None:
    command = ALL_COMMANDS[full_name]
    assert first_paragraph(command.help), f"{full_name} has no help text"
    ctx = click.Context(command)
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{full_name} {param.opts[0]} has no help text"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_lazy_map_matches_the_command(name: str) -> None:
    command = ALL_COMMANDS[f"digest {name}"]
    assert command.name == name, f"app.COMMANDS[{name!r}] loads the command {command.name!r}"
    assert COMMANDS[name].short_help == first_paragraph(command.help), (
        f"app.COMMANDS[{name!r}].short_help differs from the first paragraph of its docstring"
    )


def test_every_command_module_command_is_in_the_map() -> None:
    reachable = {id(command) for command in ALL_COMMANDS.values()}
    modules = {entry.import_path.split(":")[0] for entry in COMMANDS.values()}
    for module_name in sorted(modules):
        module = importlib.import_module(module_name)
        for attribute, value in vars(module).items():
            if isinstance(value, click.Command):
                assert id(value) in reachable, (
                    f"{module_name}.{attribute} is a command that app.COMMANDS does not reach"
                )


def test_group_help_lists_commands_as_click_would() -> None:
    # A fresh group with the same map, nothing loaded: the list comes from the map.
    lazy = DigestGroup("digest", lazy_commands=COMMANDS)
    loaded = click.Group("digest", commands={n: ALL_COMMANDS[f"digest {n}"] for n in COMMANDS})
    runner = CliRunner()
    lazy_help = runner.invoke(lazy, ["--help"]).output
    assert lazy.commands == {}, "--help loaded commands"
    assert lazy_help == runner.invoke(loaded, ["--help"]).output
