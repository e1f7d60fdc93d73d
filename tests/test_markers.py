"""The slow-test list in conftest.py names tests that exist, so a rename cannot drop a mark.

A stale name would quietly move a slow test into the `pytest -m "not slow"` inner loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SLOW_MODULES, SLOW_TESTS

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("module", sorted(SLOW_MODULES | set(SLOW_TESTS)))
def test_slow_list_names_existing_tests(module: str) -> None:
    found = sorted(TESTS.rglob(module))
    assert len(found) == 1, f"conftest.py marks {module} slow, but there is no one such file"
    path = found[0]
    text = path.read_text(encoding="utf-8")
    for function in sorted(SLOW_TESTS.get(module, ())):
        assert f"def {function}(" in text, f"conftest.py marks {module}::{function} slow: not found"
