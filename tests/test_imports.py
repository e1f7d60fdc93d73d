"""What starting the CLI costs: `digest --help` and `--version` import click and little else.

Each check runs in a fresh interpreter, since this test process has long since imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from digest.cli.app import COMMANDS
from tests.conftest import SmtpServer

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


# One interpreter loads the rest of digest (and so every library) once, then forks a child per
# command that runs `digest NAME --help` and reports the modules it has then. Loading more up front
# can only add modules, so a command module pulled in by another still shows; the commands need
# not each pay a fresh interpreter's library imports.
HELP_IMPORTS = """
import importlib, json, os, pkgutil, sys, traceback
import digest
from digest.cli import cli
from digest.cli.app import COMMANDS
for found in pkgutil.walk_packages(digest.__path__, "digest."):
    if not found.name.startswith(("digest.cli", "digest.__main__")):
        importlib.import_module(found.name)
preloaded = sorted(m for m in sys.modules if m.endswith("_cmds"))
report = {"preloaded": preloaded}
for name in sorted(COMMANDS):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to the loop
        try:
            os.close(read)
            sys.stdout = open(os.devnull, "w")
            try:
                cli([name, "--help"], prog_name="digest", standalone_mode=False)
                found = {"modules": sorted(sys.modules)}
            except BaseException:
                found = {"error": traceback.format_exc()}
            with os.fdopen(write, "w") as out:
                out.write(json.dumps(found))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    report[name] = json.loads(data) if data else {"error": f"exit status {status}"}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def help_imports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The modules loaded by `digest NAME --help`, for each command NAME."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    result = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS],
        cwd=tmp_path_factory.mktemp("help"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert report.pop("preloaded") == [], "a module outside digest.cli imports a command module"
    return report


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_loads_only_its_own_module(help_imports: dict[str, Any], name: str) -> None:
    own_module = COMMANDS[name].import_path.split(":")[0]
    found = help_imports[name]
    assert "error" not in found, f"digest {name} --help failed: {found['error']}"
    modules = set(found["modules"])
    assert own_module in modules
    others = sorted(
        m
        for m in modules
        if m.startswith("digest.cli.") and m.endswith("_cmds") and m != own_module
    )
    assert not others, f"digest {name} --help imports {others}"


def test_version_is_the_installed_distributions_without_importlib_metadata(
    tmp_path: Path,
) -> None:
    from importlib.metadata import version

    import digest

    assert digest.__version__ == version("digest")
    assert "importlib.metadata" not in imported_by(tmp_path, "--version")


# What a command that does work may leave out: the libraries of the paths it does not take.
def test_posts_on_a_current_sqlite_store_loads_no_sqlalchemy(tmp_path: Path) -> None:
    from tests.helpers.site_fixtures import make_site

    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'digest.db'}", 2525)
    site.add_post("Hello", days_ago=1)
    site.store().dispose()  # the schema at its newest revision: a plain look will do
    modules = imported_by(tmp_path, "--config", str(site.config_path), "posts")
    loaded = {name.split(".")[0] for name in modules}
    assert not loaded & {"sqlalchemy", "alembic", "jinja2", "premailer", "lxml"}


def test_a_send_without_dkim_loads_neither_dkim_nor_requests(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    from tests.helpers.site_fixtures import add_subscribers, make_site

    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'digest.db'}", smtp_server.port)
    site.add_post("Hello", days_ago=1)
    add_subscribers(site.store(), [("ana@example.com", [])])
    modules = imported_by(
        tmp_path, "--config", str(site.config_path), "send", "weekly", "--as-of", "2026-11-27T09:00"
    )
    assert len(smtp_server.handler.messages) == 1
    loaded = {name.split(".")[0] for name in modules}
    assert not loaded & {"dkim", "cryptography", "nacl", "dns", "alembic"}
    # premailer imports requests at the top; a lazy module stands in and is never filled in.
    assert "requests.adapters" not in modules
