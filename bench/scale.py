"""Bench: `digest send --workers N` on PostgreSQL at 1k to 1M subscribers, into smtp-sink.

    python bench/scale.py --database postgresql://postgres@127.0.0.1:5432/test \\
        [--sizes 1000,10000,100000,1000000] [--workers 1,2,4] [--budget 60]

Per size, the subscribers are written once by the database (generate_series, in three category
groups) into a throwaway schema; per worker count the runs are emptied, and `digest send` runs
as a user runs it (`python -m digest send weekly --workers N` in a child process), into
Postfix's smtp-sink. The table shows:

- creation: the run's creation (one INSERT ... SELECT per segment), from `send -v`'s log;
- msg/s: deliveries marked sent over the time from the run's creation to the end of the
  command (rendering, sending, the last marks, the processes' exit); the command as a whole
  (start-up, posts, creation) is in `total`;
- rss: the peak resident set (VmHWM) of the largest process, the command or one of its
  sender processes (forked from it: the pages they share are counted in each);
- duplicates: messages smtp-sink received minus deliveries marked sent (0: each message once).

A send still running after --budget seconds is stopped with SIGINT, as Ctrl-C stops it: each
process finishes the message on the wire, records it and gives back the rest, so duplicates are
counted for a stopped send too; its msg/s is over what it sent, and its time for the whole run
is extrapolated from that rate (marked "~").
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from send import AS_OF, bench_database, free_port, make_site, start_sink

from digest.store import open_store

HEADER = (
    "subscribers",
    "workers",
    "creation",
    "msg/s",
    "sent",
    "total",
    "rss",
    "duplicates",
    "note",
)


def add_subscribers(url: str, n: int) -> float:
    """N active subscribers in three category groups, written by the database; seconds taken."""
    store = open_store(url)  # creates the schema
    store.dispose()
    engine = sa.create_engine(url)
    began = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (email, email_key, name, categories, status, "
                "link_key, legacy_links, status_changed_at, created_at, updated_at) "
                "SELECT 'reader' || g || '@example.org', 'reader' || g || '@example.org', "
                "'Reader ' || g, CAST(CASE g % 3 WHEN 0 THEN '[\"Engineering\"]' "
                "WHEN 1 THEN '[\"Culture\"]' ELSE '[]' END AS json), 'active', "
                "md5(random()::text || g), false, now(), now(), now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": n},
        )
    with engine.connect() as conn:  # what autovacuum would have done by the next send
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("VACUUM ANALYZE subscribers")
        )
    took = time.perf_counter() - began
    engine.dispose()
    return took


def reset_runs(url: str) -> None:
    """No run, delivery or worker left: the posts are new again."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE runs, workers CASCADE"))
    engine.dispose()


def sent_count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM deliveries WHERE status = 'sent'"))
        value = int(n.scalar_one())
    engine.dispose()
    return value


def sink_messages(output: Path) -> int:
    found = re.findall(r"mesg=(\d+)", output.read_text("utf-8", "replace"))
    return int(found[-1]) if found else 0


def settled_sink_count(output: Path, at_least: int) -> int:
    """smtp-sink's count once its sessions have ended (it updates it as each one ends)."""
    deadline = time.monotonic() + 10
    count = sink_messages(output)
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
        count = sink_messages(output)
    time.sleep(0.5)
    return sink_messages(output)


class PeakRss:
    """The peak resident set (VmHWM) of a process and of its descendants, read from /proc.

    Not wait4's ru_maxrss: the child is started by vfork, and Linux counts the spawning
    process's (this bench's) resident set into the child's high-water mark at exec.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak: dict[int, int] = {}  # pid -> kB

    def sample(self) -> None:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                parents.setdefault(ppid, []).append(int(entry))
        todo = [self.pid]
        while todo:
            pid = todo.pop()
            todo += parents.get(pid, [])
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            kb = int(line.split()[1])
                            self.peak[pid] = max(self.peak.get(pid, 0), kb)
            except OSError:
                continue

    def largest_mb(self) -> float:
        return max(self.peak.values(), default=0) / 1024


class Stderr(threading.Thread):
    """Reads the command's log as it comes, noting when the run was created."""

    def __init__(self, stream: object) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.created_at: float | None = None  # perf_counter when the line came
        self.creation = math.nan

    def run(self) -> None:
        for line in self.stream:  # type: ignore[attr-defined]
            self.lines.append(line)
            found = re.search(r"created in ([\d.]+) s", line)
            if found and self.created_at is None:
                self.created_at = time.perf_counter()
                self.creation = float(found.group(1))


def one(
    url: str, config: Path, size: int, workers: int, budget: float, sink_out: Path
) -> dict[str, str]:
    reset_runs(url)
    before = sink_messages(sink_out)
    cmd = [sys.executable, "-m", "digest", "-v", "--config", str(config), "send", "weekly"]
    cmd += ["--as-of", AS_OF.isoformat(), "--workers", str(workers)]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = Stderr(proc.stderr)
    log.start()
    rss = PeakRss(proc.pid)
    stopped = False
    while True:
        rss.sample()  # the last sample comes before the process is reaped
        pid, _status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        created = log.created_at
        if not stopped and created is not None and time.perf_counter() - created > budget:
            stopped = True
            proc.send_signal(signal.SIGINT)  # as Ctrl-C: the senders stop after their message
        time.sleep(0.2)
    ended = time.perf_counter()
    proc.returncode = 0  # reaped above
    log.join(timeout=5)
    if log.created_at is None:
        sys.exit("digest send did not create a run:\n" + "".join(log.lines[-20:]))
    sent = sent_count(url)
    received = settled_sink_count(sink_out, before + sent) - before
    rate = sent / max(ended - log.created_at, 1e-9)
    total = f"{ended - began:.1f} s"
    if stopped:
        total = f"~{(log.created_at - began) + size / max(rate, 1e-9):.0f} s"
    return {
        "subscribers": f"{size:,}",
        "workers": str(workers),
        "creation": f"{log.creation:.2f} s",
        "msg/s": f"{rate:.0f}",
        "sent": f"{sent:,}",
        "total": total,
        "rss": f"{rss.largest_mb():.0f} MB",
        "duplicates": str(received - sent),
        "note": f"stopped (SIGINT) after {budget:g} s of sending" if stopped else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL URL")
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--connections", type=int, default=4, help="in total, over the workers")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of sending at most")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(" | ".join(HEADER), flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="digest-scale-") as tmp:
            sink_out = Path(tmp) / "sink.out"
            with sink_out.open("w") as out:
                sink = start_sink(port, extra=["-c"], stdout=out)
            try:
                with bench_database(args.database, Path(tmp)) as url:
                    config = make_site(Path(tmp), url, port, args.connections)
                    seeded = add_subscribers(url, size)
                    print(f"# {size:,} subscribers written in {seeded:.1f} s", flush=True)
                    for workers in (int(w) for w in args.workers.split(",")):
                        row = one(url, config, size, workers, args.budget, sink_out)
                        load = os.getloadavg()[0]
                        print(" | ".join(row.values()) + f" | load {load:.1f}", flush=True)
            finally:
                sink.terminate()
                sink.wait()


if __name__ == "__main__":
    main()
