"""The code gates (ruff check, ruff format --check, mypy --strict), started when a session that
runs tests/test_quality.py has collected its tests, so that they run on the other core while the
rest of the suite runs; test_quality.py waits for each one's result."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str) -> str | None:
    """The tool installed next to this Python (the project's venv), else on PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


GATES = {
    "ruff": ("ruff", "check", "digest", "tests", "bench"),
    "ruff format": ("ruff", "format", "--check", "digest", "tests", "bench"),
    "mypy": ("mypy", "--strict", "digest"),
}


@dataclass
class Gate:
    process: subprocess.Popen[bytes]
    output: IO[bytes]

    def result(self) -> tuple[int, str]:
        """Its exit code and its output (stdout and stderr), once it has finished."""
        code = self.process.wait()
        self.output.seek(0)
        text = self.output.read().decode(errors="replace")
        self.output.close()
        return code, text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.output.close()


_started: dict[str, Gate] = {}


def start(names: Iterable[str] = GATES) -> None:
    """Start the named gates whose tool is installed (a missing one fails its test)."""
    for name in names:
        program, *args = GATES[name]
        found = tool(program)
        if name in _started or found is None:
            continue
        output = tempfile.TemporaryFile()  # noqa: SIM115 - Gate.result or Gate.stop closes it
        process = subprocess.Popen([found, *args], cwd=ROOT, stdout=output, stderr=output)
        _started[name] = Gate(process, output)


def result(name: str) -> tuple[int, str]:
    """The named gate's exit code and output; it is started now if it was not yet."""
    start([name])
    return _started.pop(name).result()


def stop_all() -> None:
    """Stop the gates nobody asked for (the session ended early)."""
    while _started:
        _started.popitem()[1].stop()
