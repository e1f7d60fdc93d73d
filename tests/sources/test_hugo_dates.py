"""Hugo's dates (spf13/cast layouts read by Go's time.Parse), `[frontmatter]` handlers, pages
whose date cannot be read (listed as bad-date, one warning), and the sections hint.

The table is what real Hugo 0.111 made of each value (`date: "VALUE"`, site zone Asia/Tokyo);
with hugo installed, a test builds it again.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.errors import BadDateError
from digest.sources.hugo.dates import hugo_date
from digest.sources.hugo.reader import load_hugo_posts, read_hugo_site
from tests.helpers.hugo_layouts import hugo_pages

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime.fromisoformat("2026-12-06T12:00:00+00:00")
# value -> the date Hugo 0.111 gives it ("" : the zero date, Hugo reads no date)
HUGO_READS = {
    "2019-04-09T8:09:26-07:00": "2019-04-09T08:09:26-07:00",  # one-digit hour
    "2019-04-09 8:09:26": "2019-04-09T08:09:26+09:00",
    "2019-04-09T08:09:26.123+0200": "2019-04-09T08:09:26.123000+02:00",
    "2019-04-09 08:09:26 +0200": "2019-04-09T08:09:26+02:00",
    "2019-04-09 08:09:26 -0700 PDT": "2019-04-09T08:09:26-07:00",
    "Tue, 09 Apr 2019 08:09:26 +0200": "2019-04-09T08:09:26+02:00",
    "Tue, 09 Apr 2019 08:09:26 PDT": "2019-04-09T08:09:26+09:00",  # a zone name: site zone
    "09 Apr 2019": "2019-04-09T00:00:00+09:00",
    "2019-04-09T08:09:26": "2019-04-09T08:09:26+09:00",
    "2019-04-09 08:09:26Z": "2019-04-09T08:09:26+00:00",
    "Tue Apr  9 08:09:26 2019": "2019-04-09T08:09:26+09:00",
    "2019-04-09": "2019-04-09T00:00:00+09:00",
    "2014-10-16 17:59": "",  # no seconds
    "2019-04-09T08:09": "",
    "2019-04-09t08:09:26z": "",
    "2019-04-09T8:9:26Z": "",
    "2019-4-9": "",
    "2019/04/09": "",
    "Apr 9 2019": "",
    "2019-02-30": "",
}


@pytest.mark.parametrize("value", sorted(HUGO_READS))
def test_a_date_is_read_as_hugo_reads_it(value: str) -> None:
    parsed = hugo_date(value, TOKYO)
    assert (parsed.isoformat() if parsed else "") == HUGO_READS[value]


def _site(root: Path, config: str, pages: dict[str, str]) -> Path:
    (root / "content").mkdir(parents=True)
    (root / "hugo.toml").write_text(config, encoding="utf-8")
    for name, text in pages.items():
        path = root / "content" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.skipif(shutil.which("hugo") is None, reason="hugo is not installed")
def test_the_table_is_what_real_hugo_builds(tmp_path: Path) -> None:
    pages = {
        f"posts/p{i}.md": f'---\ntitle: "p{i}"\ndate: "{value}"\n---\nText.\n'
        for i, value in enumerate(sorted(HUGO_READS))
    }
    site = _site(tmp_path / "site", 'baseURL = "https://x.org/"\ntimeZone = "Asia/Tokyo"\n', pages)
    built = {p["file"]: p["date"] for p in hugo_pages(site, tmp_path)["pages"]}
    for i, value in enumerate(sorted(HUGO_READS)):
        expected = HUGO_READS[value]
        expected = (
            datetime.fromisoformat(expected).strftime("%Y-%m-%dT%H:%M:%S%z") if expected else ""
        )
        got = built[f"content/posts/p{i}.md"]
        assert got.replace(":", "") == expected.replace(":", ""), value


def test_dates_from_the_file_name_and_aliases(tmp_path: Path) -> None:
    # [frontmatter] date = [":filename", ":default"]: the name's day in the site zone, the rest
    # of the name the slug; lastmod = ["lastmod"] also reads `modified` (Hugo's alias).
    site = _site(
        tmp_path / "site",
        'baseURL = "https://x.org/"\ntimeZone = "Asia/Tokyo"\n'
        '[frontmatter]\ndate = [":filename", ":default"]\nlastmod = ["lastmod"]\n',
        {
            "posts/2020-01-02_-hello-there.md": "---\ntitle: a\nmodified: 2020-06-06\n---\nx\n",
            "posts/2021-12-14-bundle.x/index.md": "---\ntitle: b\n---\nx\n",
            "posts/no-date-in-name.md": "---\ntitle: c\ndate: 2019-03-03\n---\nx\n",
        },
    )
    pages = {p.relative_path.split("/")[2]: p for p in read_hugo_site(site).pages}
    first = pages["2020-01-02_-hello-there.md"]
    assert first.date == datetime(2020, 1, 2, tzinfo=TOKYO)
    assert first.slug == "hello-there" and first.permalink == "https://x.org/posts/hello-there/"
    assert first.lastmod == datetime(2020, 6, 6, tzinfo=TOKYO)
    assert pages["2021-12-14-bundle.x"].slug == "bundle"
    assert pages["no-date-in-name.md"].date == datetime(2019, 3, 3, tzinfo=TOKYO)


def test_an_unreadable_date_is_a_bad_date_problem_not_a_silent_loss(tmp_path: Path) -> None:
    site = _site(
        tmp_path / "site",
        'baseURL = "https://x.org/"\n',
        {
            "posts/good.md": "---\ntitle: Good\ndate: 2024-01-02\n---\nx\n",
            "posts/loose.md": '---\ntitle: Loose\ndate: "2014-10-16 17:59"\n---\nx\n',
            "posts/none.md": "---\ntitle: Undated\n---\nx\n",
        },
    )
    loaded = load_hugo_posts(site, now=NOW)
    assert [p.title for p in loaded.posts] == ["Good"]
    by_name = {Path(p.path).name: p for p in loaded.problems}
    loose, undated = by_name["loose.md"], by_name["none.md"]
    assert isinstance(loose, BadDateError) and "'2014-10-16 17:59'" in loose.reason
    assert loose.title == "Loose" and loose.url == "https://x.org/posts/loose/"
    assert isinstance(undated, BadDateError) and "no date" in undated.reason


def test_sections_without_dated_pages_name_the_ones_with_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # No mainSections: Hugo's choice is the biggest section (docs), whose pages have no date.
    site = _site(
        tmp_path / "site",
        'baseURL = "https://x.org/"\n',
        {
            **{f"docs/page-{i}.md": f"---\ntitle: Doc {i}\n---\nx\n" for i in range(3)},
            "blog/one.md": "---\ntitle: One\ndate: 2024-01-02\n---\nx\n",
            "blog/two.md": "---\ntitle: Two\ndate: 2024-01-03\n---\nx\n",
        },
    )
    with caplog.at_level(logging.WARNING, logger="digest"):
        loaded = load_hugo_posts(site, now=NOW)
    assert loaded.posts == () and loaded.problems == ()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["section docs has no dated pages; blog has 2: set site.sections"]
    assert len(load_hugo_posts(site, now=NOW, sections=("blog",)).posts) == 2
