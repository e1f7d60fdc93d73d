"""post_workers: a site read by several processes gives what reading it in one gives."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from digest.errors import PostError
from digest.settings import SiteSettings
from digest.sources.jekyll.reader import load_posts
from digest.sources.jekyll.workers import MIN_FILES, process_count, read_all
from digest.sources.post import PostsLoad


def mixed_site(root: Path) -> SiteSettings:
    """Posts, drafts, broken files and files that warn, spread so every share gets some."""
    posts, drafts = root / "_posts", root / "_drafts"
    posts.mkdir(parents=True)
    drafts.mkdir()
    for i in range(40):
        name = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}-post-{i}"
        if i % 10 == 3:
            text = "---\ntitle: [unclosed\n---\nBroken YAML.\n"  # a problem
        elif i % 10 == 6:
            text = "---\ntitle: Bad date\ndate: next tuesday\n---\nBad.\n"  # bad-date problem
        elif i % 10 == 8:
            text = "---\ntitle: Never closed\nNo closing line.\n"  # another warning
        else:
            text = f"---\ntitle: Post {i}\ncategories: [a, b]\n---\nBody {i}.\n"
        (posts / f"{name}.md").write_text(text, encoding="utf-8")
    (posts / "2025-01-01-data.yml").write_text("a: 1\n", encoding="utf-8")  # not a post
    (drafts / "a-draft.md").write_text("---\ntitle: Draft\n---\nSoon.\n", encoding="utf-8")
    return SiteSettings(
        title="T", url="https://blog.example.com", posts_dir=posts, timezone="Europe/London"
    )


def loaded_with_logs(
    settings: SiteSettings, processes: int, caplog: pytest.LogCaptureFixture
) -> tuple[PostsLoad, list[tuple[str, str, str]]]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="digest"):
        loaded = load_posts(settings, include_drafts=True, processes=processes)
    logs = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    return loaded, logs


def test_three_processes_read_what_one_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = mixed_site(tmp_path)
    one, one_logs = loaded_with_logs(settings, 1, caplog)
    three, three_logs = loaded_with_logs(settings, 3, caplog)
    assert len(one.posts) == 33 and len(one.problems) == 8
    assert three.posts == one.posts
    assert [p.front_matter for p in three.posts] == [p.front_matter for p in one.posts]
    assert [(type(e), e.path, e.reason, vars(e)) for e in three.problems] == [
        (type(e), e.path, e.reason, vars(e)) for e in one.problems
    ]
    # The same warnings and debug lines, in the same order, through this process's handlers.
    assert three_logs == one_logs
    assert sum(level == "WARNING" for _name, level, _message in one_logs) == 4


def test_a_child_that_dies_has_its_share_read_here(tmp_path: Path) -> None:
    parent = os.getpid()

    def read(item: int) -> int:
        if item == 7 and os.getpid() != parent:
            os._exit(3)  # killed mid-share: no answer comes back
        if item == 9:
            raise PostError(f"file-{item}", "broken")
        return item * 2

    outcomes = read_all(read, list(range(12)), 3)
    assert outcomes[:9] == [i * 2 for i in range(9)]
    assert isinstance(outcomes[9], PostError) and outcomes[9].path == "file-9"
    assert outcomes[10:] == [20, 22]


def test_a_bug_in_a_child_raises_here_as_without_children() -> None:
    def read(item: int) -> int:
        if item == 10:
            raise RuntimeError("a bug reading item 10")
        return item

    with pytest.raises(RuntimeError, match="a bug reading item 10"):
        read_all(read, list(range(12)), 2)


def test_a_busy_machine_reads_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    cpus = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (float(cpus), 0.0, 0.0))
    assert process_count(10 * MIN_FILES) == 1  # every CPU already busy: no reader to spare
    monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.0, 0.0))
    assert process_count(10 * MIN_FILES) == min(cpus, 4)


def test_small_sites_and_threaded_processes_read_in_one_process() -> None:
    assert process_count(MIN_FILES - 1) == 1
    assert process_count(10 * MIN_FILES) <= max(1, os.cpu_count() or 1)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert process_count(10 * MIN_FILES) == 1  # a fork beside other threads can hang
    finally:
        stop.set()
        thread.join()
