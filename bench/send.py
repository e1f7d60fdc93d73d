"""Bench: a whole `digest send` process against a raw smtplib blast, side by side, into smtp-sink.

    python bench/send.py [--subscribers 50000] [--connections 2] [--database URL] [--runs 1]
                         [--mark-window default,16] [--durable-marks] [--workers N]
                         [--baseline REV] [--in-process [--profile]]
    python bench/send.py --dkim [--subscribers 2000]   # the pipeline unsigned, RSA, Ed25519

By default the pipeline is the `digest send` command in a process of its own, timed from its
start to its exit (imports, config, run creation, sending, accounting: what a user waits for),
once with the default settings and once with `delivery.mark_window: 16`, side by side with: the
raw smtplib blast, Postfix's C smtp-source where installed (same sessions, message count and
size), and the pipelined one-message limit (below). Each line gives msg/s and the ratios to the
raw blast and to the limit. --in-process times send_digest() inside this process instead
(--profile: with cProfile).

Both sides send N messages of about the same size over the same number of connections (one
thread each) to Postfix's smtp-sink in its own process. The pipeline side is `send_digest`:
select the posts, snapshot subscribers in 3 segments, render once per segment, personalise and
build each message, send, and commit the outcomes (a mark window at a time). Prints both rates
and their ratio (goal: pipeline >= 0.9 of the raw blast). --runs N repeats the whole
comparison, each run on a fresh database with its own raw blasts before and after, and reports
min and median ratios.

With --dkim, the pipeline runs three times side by side instead (a fresh database each): without
DKIM, signing with an RSA 2048 key, and with an Ed25519 key (email.dkim); prints each rate and
its ratio to the unsigned one.

Each run also times the Python client's own limit: the same prebuilt messages through digest's
pipelined stream (smtp_stream), with no database and no building.

With --mark-window 1,16 the pipeline runs once per delivery.mark_window in each run, side by
side (a fresh database each), between the same raw blasts; --durable-marks sets
database.durable_marks.

With --baseline REV (main, a commit) the code of that revision, checked out in a temporary
`git worktree`, runs each window too, as a whole process beside this code's, between the same
raw blasts (the two take turns going first from one run to the next): a change's effect side by
side, on the same machine in the same minutes.

With --database postgresql://..., the bench works in a schema of its own (created, then
dropped), so the database's other contents are left alone and every run starts empty.

smtp-sink ships with Postfix:
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import yaml
from compiled import compile_digest

from digest.config import load_settings
from digest.delivery.run import send_digest
from digest.settings.smtp import SmtpSettings
from digest.smtp.client import SmtpSender
from digest.smtp.stream import WireMessage, stream
from digest.store import open_store
from digest.store.runs import history
from digest.store.subscriber_csv import import_csv

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
AS_OF = datetime.fromisoformat("2026-11-27T09:00:00+00:00")
SECRET = "bench-secret-0123456789abcdef"


# CPU seconds of this process (all its threads) in the last pipeline and raw blasts: on a busy
# machine they say more than the wall clock (workers > 1: the pipeline's own processes are not
# counted, so it is left out).
CPU_SPENT: dict[str, float] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink(
    port: int, extra: list[str] | None = None, stdout: IO[str] | None = None
) -> subprocess.Popen[bytes]:
    sink = shutil.which("smtp-sink") or (SINK if os.path.exists(SINK) else None)
    if sink is None:
        sys.exit(
            "smtp-sink not found; install Postfix, which provides it:\n"
            "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
        )
    # -u: the user to run as after binding (smtp-sink will not run as root); backlog 1000.
    user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    proc = subprocess.Popen(
        [sink, *(extra or []), "-u", user, f"127.0.0.1:{port}", "1000"],
        stdout=stdout or subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"smtp-sink did not start on 127.0.0.1:{port}")


@contextmanager
def bench_database(url: str | None, root: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or a throwaway schema of a PostgreSQL database."""
    if url is None:
        yield f"sqlite:///{root / 'bench.db'}"
        return
    if not url.startswith("postgresql"):
        yield url
        return
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    base = url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def make_site(
    root: Path,
    database_url: str,
    port: int,
    connections: int,
    dkim_key: Path | None = None,
    mark_window: int | None = None,
    durable_marks: bool = False,
) -> Path:
    posts = root / "_posts"
    posts.mkdir(parents=True)
    body = "\n\n".join(
        f"Paragraph {i}: a reasonable amount of text about the topic, with a "
        f"[link](https://example.com/{i}) and *some* emphasis."
        for i in range(6)
    )
    for i, cat in enumerate(["Engineering", "Culture", "News"] * 2):
        date = AS_OF - timedelta(days=1 + i * 0.5)
        front = {"title": f"{cat} story {i}", "date": date.isoformat(), "categories": [cat]}
        text = f"---\n{yaml.safe_dump(front)}---\n{body}\n"
        (posts / f"{date:%Y-%m-%d}-{cat.lower()}-story-{i}.md").write_text(text, "utf-8")
    config = {
        "site": {"title": "Bench Blog", "url": "https://blog.example.com", "timezone": "UTC"},
        "database": {"url": database_url},
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "max_connections": connections,
        },
        "email": {"from": "Bench Blog <news@example.com>"},
        "web": {"base_url": "https://news.example.com", "secret": SECRET},
        "delivery": {"max_attempts": 3, "retry_backoff": 0.1},
        "digests": {"weekly": {"max_posts": 20, "lookback_days": 7}},
    }
    if mark_window is not None:
        config["delivery"]["mark_window"] = mark_window
    if durable_marks:
        config["database"]["durable_marks"] = True
    if dkim_key is not None:
        config["email"]["dkim"] = {
            "domain": "example.com",
            "selector": "bench",
            "private_key_file": str(dkim_key),
        }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path


def dkim_keys(folder: Path) -> dict[str, Path | None]:
    """The three DKIM variants: none, an RSA 2048 key, an Ed25519 key (PEM files)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    keys = {
        "rsa2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    files: dict[str, Path | None] = {"unsigned": None}
    for name, key in keys.items():
        path = folder / f"{name}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        files[name] = path
    return files


def dkim_comparison(args: argparse.Namespace, port: int) -> None:
    """The pipeline unsigned, RSA-signed and Ed25519-signed, one after the other."""
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
        keys = dkim_keys(Path(tmp))
        for name, key in keys.items():
            root = Path(tmp) / name
            root.mkdir()
            with bench_database(args.database, root) as url:
                config = make_site(root, url, port, args.connections, key)
                add_subscribers(url, args.subscribers)
                took, sent, size = pipeline(config, args.profile)
                rates[name] = sent / took
    base = rates["unsigned"]
    print(f"{args.subscribers} messages of ~{size} bytes over {args.connections} connections")
    for name, rate in rates.items():
        print(f"{name:9s} {rate:7.0f} msg/s  {1000 / rate:6.2f} ms/message  {rate / base:5.2f} x")


def add_subscribers(database_url: str, n: int) -> None:
    # Three segments: Engineering only, Culture only, everything.
    cats = ["Engineering", "Culture", ""]
    lines = ["email,name,categories"]
    lines += [f"reader{i:06d}@example.org,Reader {i},{cats[i % 3]}" for i in range(n)]
    store = open_store(database_url)
    import_csv(store, io.StringIO("\n".join(lines) + "\n"))
    store.dispose()


def prebuilt_message(size: int) -> bytes:
    """A plain-text message of about `size` bytes, CRLF lines, nothing to dot-stuff."""
    header = (
        b"From: Bench Blog <news@example.com>\r\nTo: reader@example.org\r\n"
        b"Subject: Bench\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = b"x" * 76 + b"\r\n"
    return header + line * max(1, (size - len(header)) // len(line))


def on_threads(
    n: int, connections: int, work: Callable[[int, threading.Barrier], None], cpu_key: str
) -> float:
    """N messages split over one thread per connection, timed from when every session is open
    (each work(count, start) waits on `start` once it is); seconds taken, CPU into CPU_SPENT."""
    counts = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]
    start = threading.Barrier(connections + 1)
    threads = [threading.Thread(target=work, args=(c, start)) for c in counts]
    for t in threads:
        t.start()
    start.wait()
    began, began_cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    CPU_SPENT[cpu_key] = CPU_SPENT.get(cpu_key, 0.0) + time.process_time() - began_cpu
    return time.perf_counter() - began


def raw_blast(port: int, n: int, connections: int, size: int) -> float:
    """N prebuilt messages of `size` bytes over `connections` smtplib sessions; seconds taken."""
    data = prebuilt_message(size)

    def work(count: int, start: threading.Barrier) -> None:
        with smtplib.SMTP("127.0.0.1", port) as conn:
            start.wait()
            for i in range(count):
                conn.sendmail("news@example.com", [f"reader{i:06d}@example.org"], data)

    return on_threads(n, connections, work, "raw")


def pipelined_client(port: int, n: int, connections: int, size: int) -> float:
    """The Python client's own limit: the same prebuilt messages through digest's pipelined
    stream (one round trip a message), no database, no building; seconds taken."""
    data = prebuilt_message(size)
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none")

    def work(count: int, start: threading.Barrier) -> None:
        with SmtpSender(settings) as sender:
            sender.session()
            start.wait()
            messages = (
                (i, WireMessage("news@example.com", f"reader{i:06d}@example.org", data))
                for i in range(count)
            )
            for _ in stream(sender, messages):
                pass

    return on_threads(n, connections, work, "client")


def smtp_source(port: int, n: int, connections: int, size: int) -> float | None:
    """Postfix's C client: n messages of `size` bytes over `connections` sessions kept open
    (-d); seconds taken, or None when it is not installed."""
    source = shutil.which("smtp-source") or (SOURCE if os.path.exists(SOURCE) else None)
    if source is None:
        return None
    argv = [source, "-d", "-s", str(connections), "-m", str(n), "-l", str(size)]
    argv += ["-f", "news@example.com", "-t", "reader@example.org", f"127.0.0.1:{port}"]
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def whole_process(
    config: Path, workers: int = 1, code: Path | None = None
) -> tuple[float, int, int]:
    """`digest send` in its own process, start to exit, with the digest package found under
    `code` (None: the one installed here); (seconds, messages sent, size)."""
    argv = [sys.executable, "-m", "digest", "--config", str(config), "send", "weekly"]
    argv += ["--as-of", AS_OF.isoformat(), "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_SPENT["pipeline"] = (
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    )  # its own processes' CPU (workers > 1: the forked ones too)
    if done.returncode != 0:
        sys.exit(f"digest send exited {done.returncode}: {done.stderr.strip()}")
    settings = load_settings(config)
    store = open_store(settings.database.url)
    with store.session() as session:
        (run,) = history(session)
    store.dispose()
    assert run.pending == 0, run
    return took, run.sent, _message_size(settings)


def pipeline(config: Path, profile: bool, workers: int = 1) -> tuple[float, int, int]:
    """send_digest end to end; (seconds, messages sent, average message size)."""
    settings = load_settings(config)
    store = open_store(settings.database.url)
    profiler = cProfile.Profile() if profile else None
    began, began_cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    reports = send_digest(settings, store, "weekly", as_of=AS_OF, workers=workers)
    if profiler:
        profiler.disable()
    took = time.perf_counter() - began
    CPU_SPENT["pipeline"] = time.process_time() - began_cpu
    with store.session() as session:
        (run,) = history(session)
    store.dispose()
    if profiler:
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(35)
    assert reports and reports[0].pending == 0, reports
    return took, run.sent, _message_size(settings)


def _message_size(settings: object) -> int:
    from digest.mail.message import MessageTemplate
    from digest.render.renderer import Renderer
    from digest.settings import Settings
    from digest.sources.jekyll.reader import load_posts

    assert isinstance(settings, Settings)
    digest = settings.digest("weekly")
    posts = list(load_posts(settings.site).posts)
    renderer = Renderer(settings)
    segment = renderer.render_segment(digest, posts, as_of=AS_OF)
    template = MessageTemplate(settings, digest, segment, renderer)
    built = template.build(
        to_email="reader000001@example.org",
        to_name="Reader 1",
        unsubscribe_url="https://news.example.com/unsubscribe/" + "x" * 40,
    )
    return len(built.data)


def warm_imports() -> None:
    """Import the pipeline's modules up front: a bench of throughput, not of start-up."""
    import digest.mail.message
    import digest.render.renderer
    import digest.selection.rules
    import digest.smtp.client
    import digest.sources.jekyll.reader
    import digest.store.subscriber_csv  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--database", default=None, help="database URL (default: SQLite file)")
    parser.add_argument("--in-process", action="store_true", help="time send_digest() here")
    parser.add_argument("--profile", action="store_true", help="cProfile it (--in-process)")
    parser.add_argument("--dkim", action="store_true", help="compare unsigned, RSA, Ed25519")
    parser.add_argument("--runs", type=int, default=1, help="side-by-side runs (min, median)")
    parser.add_argument(
        "--workers", type=int, default=1, help="sender processes sharing the connections"
    )
    parser.add_argument(
        "--mark-window",
        default="default,16",
        help="delivery.mark_window values run side by side ('default': the config's own)",
    )
    parser.add_argument(
        "--durable-marks", action="store_true", help="database.durable_marks: true (PostgreSQL)"
    )
    parser.add_argument(
        "--baseline", help="git revision whose code also runs each window (whole process)"
    )
    args = parser.parse_args()
    if args.baseline and (args.in_process or args.dkim):
        parser.error("--baseline compares whole processes (not with --in-process or --dkim)")
    compile_digest()  # as installed: no module compiled at each start
    windows = [None if w == "default" else int(w) for w in args.mark_window.split(",") if w]
    windows = windows or [None]

    warm_imports()
    with baseline_code(args.baseline) as baseline:
        codes: list[Path | None] = [None] if baseline is None else [baseline, None]
        variants = [(w, code) for w in windows for code in codes]
        ratios: dict[Variant, list[tuple[float, float]]] = {v: [] for v in variants}
        for run in range(1, args.runs + 1):
            # With a baseline, the two codes take turns going first.
            order = variants if run % 2 else [(w, c) for w in windows for c in reversed(codes)]
            for variant, ratio in zip(order, one_run(args, run, order), strict=True):
                ratios[variant].append(ratio)
    for variant, found in ratios.items():
        to_raw = sorted(r for r, _ in found)
        to_limit = sorted(lim for _, lim in found)
        print(
            f"{_label(variant, args.baseline)}: over {len(found)} run(s), ratio to the raw "
            f"blast min {to_raw[0]:.2f} median {statistics.median(to_raw):.2f} (goal >= 1.0); "
            f"to the limit min {to_limit[0]:.2f} median {statistics.median(to_limit):.2f} "
            "(goal >= 0.35)"
        )


# A pipeline to run: its delivery.mark_window (None: the config's default) and where its digest
# package is (None: the one installed here; else a baseline's checkout).
Variant = tuple[int | None, Path | None]


@contextmanager
def baseline_code(revision: str | None) -> Iterator[Path | None]:
    """`revision` checked out in a temporary git worktree, compiled (None: no baseline)."""
    if revision is None:
        yield None
        return
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="digest-baseline-") as tmp:
        checkout = Path(tmp) / "code"
        git = ["git", "-C", str(root), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(checkout), revision], check=True)
        try:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(checkout / "digest")], check=True
            )
            yield checkout
        finally:
            subprocess.run([*git, "remove", "--force", str(checkout)], check=True)


def _label(variant: Variant, baseline: str | None = None) -> str:
    window, code = variant
    name = "digest" if code is None else f"baseline {baseline}"
    return f"{name} default" if window is None else f"{name} mark_window {window}"


def one_run(
    args: argparse.Namespace, run: int, variants: list[Variant]
) -> list[tuple[float, float]]:
    """One side-by-side comparison, each variant on a fresh database; returns the pipeline's
    ratios (to the raw blast, to the client's limit)."""
    port = free_port()
    sink = start_sink(port)
    if args.dkim:
        try:
            dkim_comparison(args, port)
        finally:
            sink.terminate()
            sink.wait()
        return [(1.0, 1.0)] * len(variants)
    n = args.subscribers
    results: list[tuple[Variant, str, float, int, int]] = []
    try:
        size = 0
        raw_before = raw_after = client = 0.0
        source: float | None = None
        CPU_SPENT.clear()
        cpu_spent: dict[Variant, float] = {}
        for i, (window, code) in enumerate(variants):
            with (
                tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp,
                bench_database(args.database, Path(tmp)) as url,
            ):
                root = Path(tmp)
                config = make_site(
                    root,
                    url,
                    port,
                    args.connections,
                    mark_window=window,
                    durable_marks=args.durable_marks,
                )
                add_subscribers(url, n)
                if i == 0:
                    # Raw blasts before the first pipeline and after the last: their mean evens
                    # out drift in load.
                    size = _message_size(load_settings(config))
                    raw_before = raw_blast(port, n, args.connections, size)
                    source = smtp_source(port, n, args.connections, size)
                    client = pipelined_client(port, n, args.connections, size)
                if args.in_process:
                    took, sent, size = pipeline(config, args.profile, args.workers)
                else:
                    took, sent, size = whole_process(config, args.workers, code)
                db = "sqlite" if url.startswith("sqlite") else url.split(":", 1)[0]
                cpu_spent[(window, code)] = CPU_SPENT["pipeline"]
                results.append(((window, code), db, took, sent, size))
        raw_after = raw_blast(port, n, args.connections, size)
    finally:
        sink.terminate()
        sink.wait()
    raw_rate = n / ((raw_before + raw_after) / 2)
    limit_rate = n / client
    load = os.getloadavg()
    db = results[0][1]
    print(
        f"run {run}: {n} messages of ~{size} bytes, {args.connections} connections, {db}, "
        f"{args.workers} worker(s), load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"({os.cpu_count()} CPUs)",
        flush=True,
    )

    def line(label: str, rate: float, cpu: float | None = None) -> None:
        per_message = f"  {cpu * 1e6:5.0f} us CPU/msg" if cpu is not None else ""
        print(
            f"  {label:44s} {rate:7.0f} msg/s  {rate / raw_rate:5.2f} x raw  "
            f"{rate / limit_rate:5.2f} x limit{per_message}",
            flush=True,
        )

    line(f"raw smtplib ({raw_before:.1f}/{raw_after:.1f} s)", raw_rate, CPU_SPENT["raw"] / (2 * n))
    if source is not None:
        line("C smtp-source", n / source)
    line("pipelined one-message limit", limit_rate, CPU_SPENT["client"] / n)
    ratios = []
    how = "in process" if args.in_process else "whole process"
    for variant, _db, took, sent, _size in results:
        rate = sent / took
        line(f"{_label(variant, args.baseline)} ({how})", rate, cpu_spent[variant] / sent)
        ratios.append((rate / raw_rate, rate / limit_rate))
    return ratios


if __name__ == "__main__":
    main()
