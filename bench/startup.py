"""Benchmark: `digest --version` and `digest --help` against `python -c pass`, side by side.

Run: .venv/bin/python bench/startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

# The same entry point the console script calls, without the script's own lookup of `digest`
# on PATH; `python -m digest` would add runpy on top.
CLI = "from digest.cli import main; main()"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "digest --version": [sys.executable, "-c", CLI, "--version"],
    "digest --help": [sys.executable, "-c", CLI, "--help"],
}


@dataclass(frozen=True)
class Run:
    wall: float  # seconds from start to exit
    cpu: float  # user + system seconds of the child: what a busy machine does not inflate
    max_rss_mb: float


@dataclass(frozen=True)
class Timing:
    label: str
    wall: float  # medians of the runs
    cpu: float
    max_rss_mb: float


def run_once(argv: list[str]) -> Run:
    """One run of argv, its output thrown away."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def measure(runs: int) -> list[Timing]:
    """Each command `runs` times, interleaved so a busy moment hits all of them alike."""
    results: dict[str, list[Run]] = {label: [] for label in COMMANDS}
    for argv in COMMANDS.values():  # warm the page cache and the .pyc files
        run_once(argv)
    for _ in range(runs):
        for label, argv in COMMANDS.items():
            results[label].append(run_once(argv))
    return [
        Timing(
            label,
            statistics.median(r.wall for r in rs),
            statistics.median(r.cpu for r in rs),
            statistics.median(r.max_rss_mb for r in rs),
        )
        for label, rs in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21, help="Runs of each command.")
    args = parser.parse_args()
    timings = measure(args.runs)
    base = timings[0]
    print(f"{args.runs} runs each, interleaved; medians (load average {os.getloadavg()[0]:.1f})")
    print(f"{'command':<18} {'wall':>8} {'ratio':>6} {'cpu':>8} {'ratio':>6} {'memory':>8}")
    for t in timings:
        print(
            f"{t.label:<18} {t.wall * 1000:>6.0f}ms {t.wall / base.wall:>5.1f}x"
            f" {t.cpu * 1000:>6.0f}ms {t.cpu / base.cpu:>5.1f}x {t.max_rss_mb:>6.0f}MB"
        )


if __name__ == "__main__":
    main()
