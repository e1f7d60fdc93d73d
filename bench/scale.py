"""Bench: `digest send --workers N` on PostgreSQL at 1k to 1M subscribers, into smtp-sink.

    python bench/scale.py --database postgresql://postgres@127.0.0.1:5432/test \
        [--sizes 1000,10000,100000,1000000] [--workers 1,2,4] [--budget 60]

Per size and worker count: the run is created from scratch (posts new again), `digest send`
runs as a user runs it (the console entry point in a child process), and the table shows
run-creation time, msg/s, the peak RSS of the largest process (parent or worker), and
duplicates (messages smtp-sink counted minus deliveries marked sent; 0 without a crash).

A run bigger than --budget seconds of sending is stopped with SIGINT after the budget; its
msg/s is over the budget, its total time extrapolated, duplicates not counted (stopped).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from send import AS_OF, bench_database, free_port, make_site, start_sink

from digest.store import open_store


def add_subscribers(url: str, n: int) -> None:
    """N active subscribers in three category groups, written by the database itself."""
    store = open_store(url)  # creates the schema
    store.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (email, email_key, name, categories, status, "
                "status_changed_at, created_at, updated_at) "
                "SELECT 'reader' || g || '@example.org', 'reader' || g || '@example.org', "
                "'Reader ' || g, CAST(CASE g % 3 WHEN 0 THEN '[\"Engineering\"]' "
                "WHEN 1 THEN '[\"Culture\"]' ELSE '[]' END AS json), 'active', now(), now(), now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": n},
        )
    engine.dispose()


def reset_runs(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("sent_posts", "deliveries", "segments", "runs", "workers"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
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


def one(url: str, config: Path, workers: int, budget: float, sink_out: Path) -> dict[str, str]:
    reset_runs(url)
    before = sink_messages(sink_out)
    cmd = [sys.executable, "-m", "digest", "-v", "--config", str(config), "send", "weekly"]
    cmd += ["--as-of", AS_OF.isoformat(), "--workers", str(workers)]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped = False
    while True:  # wait4 (not wait): the child's rusage holds its peak RSS and its workers'
        pid, _status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if not stopped and time.perf_counter() - began > budget:
            stopped = True
            proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    proc.returncode = 0  # reaped above
    took = time.perf_counter() - began
    err = proc.stderr.read() if proc.stderr else ""
    created = re.search(r"created in ([\d.]+) s", err)
    creation = float(created.group(1)) if created else float("nan")
    time.sleep(0.5)  # smtp-sink updates its counter when a session ends
    sent = sent_count(url)
    received = sink_messages(sink_out) - before
    sending = max(took - creation, 1e-9)
    rate = sent / sending
    return {
        "workers": str(workers),
        "creation": f"{creation:.2f} s",
        "msg/s": f"{rate:.0f}",
        "sent": str(sent),
        "rss": f"{usage.ru_maxrss / 1024:.0f} MB",
        "duplicates": "n/a (stopped)" if stopped else str(received - sent),
        "note": "stopped at budget" if stopped else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL URL")
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per send at most")
    args = parser.parse_args()
    header = ("subscribers", "workers", "creation", "msg/s", "sent", "rss", "duplicates", "note")
    print(" | ".join(header), flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="digest-scale-") as tmp:
            sink_out = Path(tmp) / "sink.out"
            with sink_out.open("w") as out:
                sink = start_sink(port, extra=["-c"], stdout=out)
            try:
                with bench_database(args.database, Path(tmp)) as url:
                    config = make_site(Path(tmp), url, port, args.connections)
                    add_subscribers(url, size)
                    for workers in (int(w) for w in args.workers.split(",")):
                        row = one(url, config, workers, args.budget, sink_out)
                        print(f"{size} | " + " | ".join(row.values()), flush=True)
            finally:
                sink.terminate()
                sink.wait()


if __name__ == "__main__":
    main()
