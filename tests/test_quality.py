"""The code gates run by the test command: ruff (lint and format) and mypy --strict on digest/.

They start as soon as the session has collected its tests (tests/code_gates.py, from
conftest.py), so they run while the other tests do; each test here waits for its gate.
"""

from __future__ import annotations

import pytest

from tests.helpers import code_gates


def gate(name: str) -> tuple[int, str]:
    program = code_gates.GATES[name][0]
    if code_gates.tool(program) is None:
        pytest.fail(f"{program} is not installed: pip install -e '.[dev]'")
    return code_gates.result(name)


def test_ruff_lint() -> None:
    code, output = gate("ruff")
    assert code == 0, output


def test_ruff_format() -> None:
    code, output = gate("ruff format")
    assert code == 0, output


def test_mypy_strict() -> None:
    code, output = gate("mypy")
    assert code == 0, output
