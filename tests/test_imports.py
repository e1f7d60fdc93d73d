"""What starting the CLI costs: `digest --help` and `--version` import click and little else.

Each check runs in a fresh interpreter, since this test process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digest.cli.app import COMMANDS

# Runs the CLI in-process in the child with the given arguments, then prints what it imported.
IMPORTS_OF = """
import json, sys
from digest.cli import cli
cli(sys.argv[1:], prog_name="digest", standalone_mode=False)
print(json.dumps(sorted(sys.modules)))
"""

# Third-party packages that --help and --version have no use for: every dependency but click.
HEAVY = {
    "aiosmtpd",
    "alembic",
    "apscheduler",
    "cryptography",
    "cssutils",
    "dkim",
    "email_validator",
    "flufl",
    "frontmatter",
    "ftfy",
    "itsdangerous",
    "jinja2",
    "lxml",
    "markdown_it",
    "nacl",
    "nh3",
    "premailer",
    "psycopg",
    "pydantic",
    "sqlalchemy",
    "yaml",
}
# The part of digest that starting the CLI needs.
STARTUP_MODULES = {"digest", "digest.cli", "digest.cli.app", "digest.errors"}


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after `digest ARGS`."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return set(modules)


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_startup_loads_no_heavy_module(tmp_path: Path, option: str) -> None:
    modules = imported_by(tmp_path, option)
    heavy = sorted({name.split(".")[0] for name in modules} & HEAVY)
    assert not heavy, f"digest {option} imports {', '.join(heavy)}"
    ours = sorted(name for name in modules if name.split(".")[0] == "digest")
    assert set(ours) <= STARTUP_MODULES, f"digest {option} imports {ours}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_loads_only_its_own_module(tmp_path: Path, name: str) -> None:
    own_module = COMMANDS[name].import_path.split(":")[0]
    modules = imported_by(tmp_path, name, "--help")
    assert own_module in modules
    others = sorted(
        m
        for m in modules
        if m.startswith("digest.cli.") and m.endswith("_cmds") and m != own_module
    )
    assert not others, f"digest {name} --help imports {others}"
