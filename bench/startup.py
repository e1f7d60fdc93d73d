"""Benchmark: start-up costs against `python -c pass`, side by side: `digest --version`,
`digest --help`, `digest posts` on the demo site, and `digest send` to three subscribers (into
Postfix's smtp-sink, a fresh copy of the database each run).

Run: .venv/bin/python bench/startup.py [--runs 21]
digest's bytecode is compiled first, as `pip install` does (bench/compiled.py says why).
Goals (issue 20): `digest posts` <= 0.3 s over `python -c pass`; the send <= 0.6 s wall.
"libraries of a send" imports, and does nothing else with, the libraries `digest send` needs
(SQLAlchemy's ORM, premailer with cssutils and lxml, Jinja, pydantic, ...): its floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from compiled import compile_digest

# The same entry point the console script calls, without the script's own lookup of `digest`
# on PATH; `python -m digest` would add runpy on top.
CLI = "from digest.cli import main; main()"
# The libraries a send cannot do without, imported alone: the floor under `digest send`.
SEND_LIBRARIES = (
    "import sqlalchemy.orm, sqlalchemy.dialects.sqlite, premailer, cssutils, lxml.html, jinja2, "
    "pydantic, click, yaml, markdown_it, babel.dates, email_validator"
)
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "libraries of a send": [sys.executable, "-c", SEND_LIBRARIES],
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


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path | None = None
    before: Callable[[], None] | None = None  # untimed, before each run


def run_once(command: Command) -> Run:
    """One run of the command, its output thrown away."""
    if command.before is not None:
        command.before()
    argv = command.argv
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=command.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_commands(root: Path, sink_port: int) -> dict[str, Command]:
    """`digest posts` in a `digest demo` folder, and `digest send` to three subscribers of it."""
    demo = root / "demo"
    demo.mkdir()
    subprocess.run([sys.executable, "-c", CLI, "demo"], cwd=demo, check=True, capture_output=True)
    config_path = demo / "config.yaml"
    config = yaml.safe_load(config_path.read_text("utf-8"))
    config["smtp"].update({"port": sink_port, "security": "none"})
    config_path.write_text(yaml.safe_dump(config), "utf-8")
    (demo / "digest.db").unlink()
    for email in ("ana@example.com", "ben@example.com", "chloe@example.com"):
        add = [sys.executable, "-c", CLI, "subscribers", "add", email]
        subprocess.run(add, cwd=demo, check=True, capture_output=True)
    shutil.copyfile(demo / "digest.db", root / "three-subscribers.db")

    def fresh_database() -> None:
        for extra in ("-wal", "-shm"):
            (demo / f"digest.db{extra}").unlink(missing_ok=True)
        shutil.copyfile(root / "three-subscribers.db", demo / "digest.db")

    return {
        "digest posts (demo)": Command([sys.executable, "-c", CLI, "posts"], cwd=demo),
        "digest send (3 subs)": Command(
            [sys.executable, "-c", CLI, "send", "weekly"], cwd=demo, before=fresh_database
        ),
    }


def start_sink(port: int) -> subprocess.Popen[bytes] | None:
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.path.exists(sink):
        return None
    user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    proc = subprocess.Popen([sink, "-u", user, f"127.0.0.1:{port}", "100"])
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


def measure(runs: int, commands: dict[str, Command]) -> list[Timing]:
    """Each command `runs` times, interleaved so a busy moment hits all of them alike."""
    results: dict[str, list[Run]] = {label: [] for label in commands}
    for command in commands.values():  # warm the page cache and the .pyc files
        run_once(command)
    for _ in range(runs):
        for label, command in commands.items():
            results[label].append(run_once(command))
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
    compile_digest()
    commands = {label: Command(argv) for label, argv in COMMANDS.items()}
    port = free_port()
    sink = start_sink(port)
    try:
        with tempfile.TemporaryDirectory(prefix="digest-startup-") as tmp:
            if sink is not None:
                commands.update(demo_commands(Path(tmp), port))
            else:
                print("smtp-sink not found (Postfix): the demo commands are left out")
            timings = measure(args.runs, commands)
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()
    base = timings[0]
    load = os.getloadavg()
    print(
        f"{args.runs} runs each, interleaved; medians (load average {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f}, {os.cpu_count()} CPUs)"
    )
    print(
        f"{'command':<22} {'wall':>8} {'over':>8} {'ratio':>6} {'cpu':>8} {'ratio':>6} "
        f"{'memory':>8}"
    )
    for t in timings:
        over = (t.wall - base.wall) * 1000
        cpu_ratio = t.cpu / max(base.cpu, 1e-3)
        print(
            f"{t.label:<22} {t.wall * 1000:>6.0f}ms {over:>6.0f}ms {t.wall / base.wall:>5.1f}x "
            f"{t.cpu * 1000:>6.0f}ms {cpu_ratio:>5.1f}x {t.max_rss_mb:>6.0f}MB"
        )


if __name__ == "__main__":
    main()
