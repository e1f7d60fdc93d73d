"""Benchmark: `load_posts` on 5,000 Jekyll posts, this code vs an earlier commit, side by side.

Run: .venv/bin/python bench/posts.py [--posts 5000] [--baseline REV] [--repeats 3] [--processes N]
The baseline is checked out in a temporary `git worktree` and timed in a subprocess on the same
files; the goal is under 1 s for 5,000 posts. CPU time is shown too: on a shared machine it
says more than the wall clock. It counts the reader processes a big site is read with
(post_workers), so with two of them it is above the wall clock. `--processes N` sets how many
read (default: as `load_posts` decides from the site's size and the load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# CPU is this process's and its finished children's (the reader processes, if any).
TIMER = """
import json, os, statistics, sys, time
from digest.config import load_settings
from digest.sources.jekyll.reader import load_posts
import digest
def cpu_now():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
site = load_settings(sys.argv[1], environ={}).site
processes = int(sys.argv[3]) if sys.argv[3] else None
times, cpu = [], []
for _ in range(int(sys.argv[2])):
    start, start_cpu = time.perf_counter(), cpu_now()
    loaded = load_posts(site, processes=processes)
    times.append(time.perf_counter() - start)
    cpu.append(cpu_now() - start_cpu)
print(json.dumps({"median": statistics.median(times), "cpu": statistics.median(cpu),
                  "first": times[0], "first_cpu": cpu[0],
                  "posts": len(loaded.posts), "module": digest.__file__}))
"""
CONFIG = "site:\n  title: Bench\n  url: https://blog.example.com\nemail:\n  from: a@example.com\n"
JEKYLL_CONFIG = """
title: Bench
timezone: Europe/Berlin
permalink: pretty
defaults:
  - scope: {path: "", type: posts}
    values: {layout: post}
"""


def post_text(i: int) -> str:
    """One post as bloggers write them: a date with offset, lists, a few non-ASCII and Liquid."""
    accents = "Café, naïve façade — “quoted”. " if i % 5 == 0 else ""
    liquid = "See [the previous post]({{ '/archive/' | relative_url }}). " if i % 20 == 0 else ""
    return (
        "---\n"
        f'title: "Post {i}: the council votes on cycle lanes"\n'
        f"date: 2024-{1 + i % 12:02d}-{1 + i % 28:02d} 09:{i % 60:02d}:00 +0100\n"
        f"categories: [News, {'Movies' if i % 2 else 'Photos'}]\n"
        "tags: bikes city council\n"
        "author: Ada Lovelace\n"
        f"image: assets/{i}.jpg\n"
        "---\n\n"
        f"{accents}{liquid}The council met on Tuesday to discuss the new [cycle lanes][lanes] "
        "along the river, and voted to extend the trial.\n\n"
        + "More words about it, paragraph after paragraph.\n\n" * 20
        + "[lanes]: https://example.org/lanes\n"
    )


def make_site(folder: Path, count: int) -> Path:
    """A Jekyll site with `count` posts and a digest config beside it; returns the config."""
    posts = folder / "_posts"
    posts.mkdir(parents=True)
    (folder / "_config.yml").write_text(JEKYLL_CONFIG, encoding="utf-8")
    for i in range(count):
        name = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}-post-{i}.md"
        (posts / name).write_text(post_text(i), encoding="utf-8")
    config = folder / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


def time_code(
    code_root: Path, config: Path, repeats: int, processes: int | None = None
) -> dict[str, object]:
    """Median `load_posts` seconds of the digest package found under `code_root`."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    result = subprocess.run(
        [sys.executable, "-c", TIMER, str(config), str(repeats), str(processes or "")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=code_root,
    )
    timing: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, help="reader processes (default: as decided)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        config = make_site(work / "site", args.posts)
        print(f"wrote {args.posts} posts in {time.perf_counter() - start:.1f} s")
        baseline = work / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(baseline),
             args.baseline],
            check=True,
        )  # fmt: skip
        try:
            old = time_code(baseline, config, args.repeats, args.processes)
            new = time_code(ROOT, config, args.repeats, args.processes)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                check=True,
            )
        for label, timing in ((f"baseline {args.baseline}", old), ("this code", new)):
            print(
                f"{label:>20}: {timing['median']:.3f} s wall, {timing['cpu']:.3f} s CPU"
                f" (first call in the process: {timing['first']:.3f} s wall,"
                f" {timing['first_cpu']:.3f} s CPU) for {timing['posts']} posts"
                f" ({timing['module']})"
            )
        ratio = float(str(old["median"])) / float(str(new["median"]))
        cpu_ratio = float(str(old["cpu"])) / float(str(new["cpu"]))
        print(
            f"{'speed-up':>20}: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU; goals under 1 s:"
            f" wall {float(str(new['median'])) < 1}, CPU {float(str(new['cpu'])) <= 1}"
            f" (load average {os.getloadavg()[0]:.2f})"
        )


if __name__ == "__main__":
    main()
