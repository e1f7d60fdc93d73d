"""What the library exports: every public function and class of digest/ is used by digest itself.

In the spirit of httpx's test_exported_members: a public name that only tests (or nobody) call is
dead code or a test helper living in the library; it goes, or moves to tests/helpers.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "digest"

# Public names used from outside digest/ on purpose: entry points and hooks named in strings.
ENTRY_POINTS = {
    "main",  # the console script (pyproject.toml) and python -m digest
    "upgrade",
    "downgrade",  # Alembic migration hooks
    "run_migrations_online",
    "run_migrations_offline",
}
# Used by tests and benches only today, each with the reason it stays in the library.
TESTED_API = {
    "check_smtp",  # connect + TLS + AUTH of a relay: what `digest doctor` checks
    "serialise_message",  # the bytes of a message as sent; bench/message.py times it
    "plain_excerpt",  # Hugo's plain summary, tested against real Hugo
    "pause_subscriber",  # store API beside the web's pause (tests drive it directly)
    "active_subscribers",
    "set_status",
}


def public_definitions() -> dict[str, Path]:
    """Top-level public functions and classes, name -> defining module."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            # A decorated function is registered where it stands (a click command).
            if (
                isinstance(node, ast.FunctionDef | ast.ClassDef)
                and not node.name.startswith("_")
                and not node.decorator_list
            ):
                found.setdefault(node.name, path)
    return found


def unused_names() -> list[str]:
    words = {
        path: Counter(re.findall(r"\w+", path.read_text(encoding="utf-8")))
        for path in PACKAGE.rglob("*.py")
    }
    templates = set(
        re.findall(
            r"\w+", "".join(p.read_text("utf-8") for p in (ROOT / "templates").rglob("*.j2"))
        )
    )
    unused = []
    for name, home in public_definitions().items():
        if name in ENTRY_POINTS or name in TESTED_API or name in templates:
            continue
        elsewhere = any(name in counts for path, counts in words.items() if path != home)
        # Used where it is defined (more than its own `def`/`class` line) counts too.
        if not elsewhere and words[home][name] <= 1:
            unused.append(f"{home.relative_to(ROOT)}: {name}")
    return sorted(unused)


def test_every_public_name_is_used_by_the_library() -> None:
    assert unused_names() == [], (
        "public names nothing in digest/ uses (delete them, or move test helpers to tests/helpers)"
    )
