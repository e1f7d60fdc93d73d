"""The guards on every source: a FIFO, a symlink to /dev/zero, a YAML alias bomb, a file over the
size cap and 10,000-deep nesting (YAML, TOML, JSON) are one warning each in a Jekyll site, a
Hugo site and a JSON Feed file, and `digest posts` lists the other posts and exits 0, within a
1 GB address space and in seconds. A feed that is itself such a file is one error line.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest
import yaml

from digest.errors import FeedError
from digest.sources.feed.fetch import fetch_feed
from tests.helpers.processes import digest_script

DEEP = 10_000
AS_OF = "2026-11-29T12:00:00+00:00"
CAP = 32 * 1024  # site.max_post_bytes in these sites (10,000-deep nesting is 20 KB)
# 420 bytes of YAML whose `tags:` expand to 9**9 (387 million) strings.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]\n"
        for a, b in zip("abcdefg", "bcdefgh", strict=True)
    )
    + "tags: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)
DEEP_YAML = "tags: " + "[" * DEEP + "]" * DEEP + "\n"
DEEP_TOML = "tags = " + "[" * DEEP + "]" * DEEP + "\n"
DEEP_DOTTED_TOML = ".".join(["k"] * DEEP) + " = 1\n"
DEEP_JSON = '"tags": ' + "[" * DEEP + "]" * DEEP
BIG = "word " * 8000  # over CAP


def run_posts(config: Path) -> subprocess.CompletedProcess[str]:
    """`digest posts --all --format json` as a user runs it, in a process held to 1 GB."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    args = ["--config", str(config), "posts", "--all", "--as-of", AS_OF, "--format", "json"]
    return subprocess.run(
        [digest_script(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a FIFO used to hang `digest posts` for ever
        preexec_fn=limit_memory,
        check=False,
    )


def write_config(folder: Path, site: dict[str, object]) -> Path:
    config = folder / "config.yaml"
    settings = {
        "site": {"title": "Blog", "url": "https://blog.example.com", **site},
        "email": {"from": "News <news@example.com>"},
        "database": {"url": f"sqlite:///{folder / 'digest.db'}"},
        "digests": {"weekly": {"lookback_days": 30}},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config


def hostile(folder: Path, name: str, kind: str) -> None:
    """A FIFO, or a symlink to /dev/zero, called `name` in `folder`."""
    if kind == "fifo":
        os.mkfifo(folder / name)
    else:
        (folder / name).symlink_to("/dev/zero")


def check(
    result: subprocess.CompletedProcess[str], expected: dict[str, str], good: set[str]
) -> None:
    """Exit 0, no traceback, one warning naming each bad file with its reason, the good posts."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(expected), result.stderr
    for name, words in expected.items():
        (line,) = [w for w in warnings if f"{name}:" in w]
        assert words in line, line
    assert {row["title"] for row in json.loads(result.stdout)} == good


def test_a_jekyll_site(tmp_path: Path) -> None:
    posts = tmp_path / "_posts"
    posts.mkdir()
    front = "---\ntitle: {}\ndate: 2026-11-2{} 08:00:00 +0000\n{}---\nBody\n"
    files = {
        "2026-11-20-good.md": front.format("Good", 0, ""),
        "2026-11-21-also-good.md": front.format("Also Good", 1, "tags: [a, b]\n"),
        "2026-11-22-laughs.md": front.format("Laughs", 2, ALIAS_BOMB),
        "2026-11-23-deep.md": front.format("Deep", 3, DEEP_YAML),
        "2026-11-24-big.md": front.format("Big", 4, "") + BIG,
    }
    for name, text in files.items():
        (posts / name).write_text(text, encoding="utf-8")
    hostile(posts, "2026-11-25-fifo.md", "fifo")
    hostile(posts, "2026-11-26-zero.md", "zero")
    config = write_config(tmp_path, {"posts_dir": "_posts", "max_post_bytes": CAP})

    expected = {
        "2026-11-22-laughs.md": "YAML aliases (*name) would repeat",
        "2026-11-23-deep.md": "front matter refused: nested more than 100 levels deep",
        "2026-11-24-big.md": "larger than site.max_post_bytes (32,768 bytes)",
        "2026-11-25-fifo.md": "not a regular file (a FIFO)",
        "2026-11-26-zero.md": "not a regular file (a symlink to a character device)",
    }
    check(run_posts(config), expected, {"Good", "Also Good"})


def test_a_hugo_site(tmp_path: Path) -> None:
    blog = tmp_path / "blog"
    content = blog / "content" / "posts"
    content.mkdir(parents=True)
    (blog / "hugo.toml").write_text('baseURL = "https://example.org/"\n', encoding="utf-8")
    yaml_page = "---\ntitle: {}\ndate: 2026-11-2{}\n{}---\nBody\n"
    toml_page = '+++\ntitle = "{}"\ndate = 2026-11-2{}\n{}+++\nBody\n'
    pages = {
        "good.md": yaml_page.format("Good", 0, ""),
        "also-good.md": toml_page.format("Also Good", 1, 'tags = ["a"]\n'),
        "json-good.md": '{"title": "Json Good", "date": "2026-11-21"}\nBody\n',
        "laughs.md": yaml_page.format("Laughs", 2, ALIAS_BOMB),
        "deep-yaml.md": yaml_page.format("Deep YAML", 3, DEEP_YAML),
        "deep-toml.md": toml_page.format("Deep TOML", 3, DEEP_TOML),
        "deep-dotted.md": toml_page.format("Deep dotted", 3, DEEP_DOTTED_TOML),
        "deep-json.md": '{"title": "Deep JSON", ' + DEEP_JSON + "}\nBody\n",
        "big.md": yaml_page.format("Big", 4, "") + BIG,
    }
    for name, text in pages.items():
        (content / name).write_text(text, encoding="utf-8")
    hostile(content, "fifo.md", "fifo")
    hostile(content, "zero.md", "zero")
    config = write_config(tmp_path, {"root": "blog", "max_post_bytes": CAP})

    deep = "front matter refused: nested more than 100 levels deep"
    expected = {
        "laughs.md": "YAML aliases (*name) would repeat",
        "deep-yaml.md": deep,
        "deep-toml.md": deep,
        "deep-dotted.md": deep,
        "deep-json.md": deep,
        "big.md": "larger than site.max_post_bytes (32,768 bytes)",
        "fifo.md": "not a regular file (a FIFO)",
        "zero.md": "not a regular file (a symlink to a character device)",
    }
    check(run_posts(config), expected, {"Good", "Also Good", "Json Good"})


def json_feed(*items: str) -> str:
    version = '"version": "https://jsonfeed.org/version/1.1"'
    return "{" + version + ', "title": "F", "items": [' + ", ".join(items) + "]}"


def item(title: str, extra: str = "") -> str:
    slug = title.lower().replace(" ", "-")
    return (
        f'{{"id": "{slug}", "url": "https://example.org/{slug}/", "title": "{title}", '
        f'"date_published": "2026-11-20T09:00:00Z"{extra}}}'
    )


def test_a_json_feed_file_with_an_item_nested_too_deep(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text(
        json_feed(item("Good"), item("Deep", ", " + DEEP_JSON), item("Also Good")),
        encoding="utf-8",
    )
    config = write_config(tmp_path, {"source": "feed", "feed_url": str(feed)})
    expected = {"feed.json": "item 2 nested more than 100 levels deep; skipped"}
    check(run_posts(config), expected, {"Good", "Also Good"})


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_feed_file_that_is_a_fifo_or_a_device_is_refused_in_one_line(
    tmp_path: Path, kind: str
) -> None:
    feed = tmp_path / "feed.json"
    hostile(tmp_path, "feed.json", kind)
    # Loading the config refuses it (exit 2); a feed that turns into one later: see below.
    result = run_posts(write_config(tmp_path, {"source": "feed", "feed_url": str(feed)}))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0].endswith(f"{feed} is neither an http(s) URL nor a file")
    with pytest.raises(FeedError) as raised:
        fetch_feed(str(feed))  # a FIFO would block this for ever; /dev/zero would stream
    kinds = {"fifo": "a FIFO", "zero": "a symlink to a character device"}
    assert str(raised.value) == (
        f"feed {feed}: not a regular file ({kinds[kind]}); only regular files are read"
    )


def test_a_feed_file_over_the_size_cap_is_one_error_line(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text(json_feed(item("Big", ', "x": "' + "x" * (10 << 20) + '"')), "utf-8")
    result = run_posts(write_config(tmp_path, {"source": "feed", "feed_url": str(feed)}))
    assert result.returncode == 1, result.stderr  # the feed cannot be read: nothing to list
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == (
        f"error: feed {feed}: file is larger than the 10240 KiB limit; not read"
    )


def test_a_jekyll_sites_config_and_data_files_go_through_the_guards(tmp_path: Path) -> None:
    posts = tmp_path / "_posts"
    posts.mkdir()
    text = "---\ntitle: Good\n---\nSee {{ site.data.links.home }}.\n"
    (posts / "2026-11-20-good.md").write_text(text, encoding="utf-8")
    data = tmp_path / "_data"
    data.mkdir()
    (data / "links.yml").write_text("home: https://example.org/\n", encoding="utf-8")
    (data / "laughs.yml").write_text(ALIAS_BOMB, encoding="utf-8")
    (data / "deep.json").write_text("[" * DEEP + "]" * DEEP, encoding="utf-8")
    hostile(data, "fifo.csv", "fifo")
    (data / "loop").symlink_to(data)  # a folder linked into itself
    (tmp_path / "_config.yml").write_text("title: Blog\n", encoding="utf-8")
    config = write_config(tmp_path, {"posts_dir": "_posts"})

    result = run_posts(config)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (row,) = json.loads(result.stdout)
    assert row["excerpt"] == "See https://example.org/."
    for name in ("laughs.yml", "deep.json", "fifo.csv"):
        assert f"{name}: cannot read data file" in result.stderr, name

    (tmp_path / "_config.yml").unlink()
    hostile(tmp_path, "_config.yml", "fifo")
    result = run_posts(config)
    assert result.returncode == 2, result.stderr
    assert "_config.yml: cannot read Jekyll config: not a regular file (a FIFO)" in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("hugo.toml", "[params]\n" + DEEP_TOML, "nested more than 100 levels deep"),
        ("config/_default/params.yaml", ALIAS_BOMB, "YAML aliases (*name) would repeat"),
        ("config/_default/params.json", "{" + DEEP_JSON + "}", "nested more than 100 levels"),
        ("config/_default/params.yaml", "fifo", "not a regular file (a FIFO)"),
        ("config/_default/params.toml", "zero", "not a regular file (a symlink to a character"),
    ],
)
def test_a_hugo_sites_config_files_go_through_the_guards(
    tmp_path: Path, name: str, text: str, words: str
) -> None:
    blog = tmp_path / "blog"
    (blog / "content" / "posts").mkdir(parents=True)
    (blog / "config" / "_default").mkdir(parents=True)
    page = "---\ntitle: Good\ndate: 2026-11-20\n---\nBody\n"
    (blog / "content" / "posts" / "good.md").write_text(page, encoding="utf-8")
    (blog / "config" / "_default" / "hugo.toml").write_text(
        'baseURL = "https://example.org/"\n', encoding="utf-8"
    )
    path = blog / name
    if text in ("fifo", "zero"):
        hostile(path.parent, path.name, text)
    else:
        path.write_text(text, encoding="utf-8")
    config = write_config(tmp_path, {"root": "blog", "source": "hugo"})

    result = run_posts(config)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"{path.name}: the Hugo config is not read: " in line and words in line, line
