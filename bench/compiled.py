"""For the benches that time whole `digest` processes: digest's bytecode compiled first.

`pip install` compiles it at install time; an editable install run with PYTHONDONTWRITEBYTECODE=1
(a development machine may set it) compiles every module of digest it loads at each start
(~0.1 s for `digest posts`, ~0.25 s for a send), which is no user's start-up.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys


def compile_digest() -> None:
    """Compile the digest package these benches import, as `pip install` does."""
    spec = importlib.util.find_spec("digest")
    assert spec is not None and spec.submodule_search_locations is not None
    for folder in spec.submodule_search_locations:
        subprocess.run([sys.executable, "-m", "compileall", "-q", folder], check=True)
