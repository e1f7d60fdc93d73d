"""posts.py: a Jekyll site on disk read by Jekyll's rules (dates, categories, excerpts, URLs)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from digest.config import load_settings
from digest.errors import BadDateError, ConfigError
from digest.settings import SiteSettings
from digest.sources.jekyll.reader import load_posts
from digest.sources.post import Post

LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")


def site(root: Path, **overrides: Any) -> SiteSettings:
    values: dict[str, Any] = {
        "title": "Test Blog",
        "url": "https://blog.example.com",
        "posts_dir": root / "_posts",
        "timezone": "Europe/London",
    }
    values.update(overrides)
    return SiteSettings(**values)


def write(
    root: Path, rel: str, front: str, body: str = "First paragraph.\n\nSecond one.\n"
) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front.strip()}\n---\n\n{body}", encoding="utf-8")
    return path


def only(root: Path, **overrides: Any) -> Post:
    loaded = load_posts(site(root, **overrides))
    assert loaded.problems == ()
    assert len(loaded.posts) == 1
    return loaded.posts[0]


# --- dates -----------------------------------------------------------------------------------


def test_filename_date_is_midnight_in_site_zone(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-big-news.md", "title: Big news\ncategories: [News]")
    post = only(tmp_path)
    assert post.date == datetime(2025, 11, 27, tzinfo=LONDON)
    assert post.date.tzinfo == LONDON
    assert post.url == "https://blog.example.com/news/2025/11/27/big-news.html"
    assert post.id == "_posts/2025-11-27-big-news.md"
    assert post.path == tmp_path / "_posts/2025-11-27-big-news.md"


def test_front_matter_date_overrides_filename(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "date: 2025-12-03")
    post = only(tmp_path)
    assert post.date == datetime(2025, 12, 3, tzinfo=LONDON)
    assert "/2025/12/03/a.html" in post.url


def test_unquoted_naive_timestamp_is_utc(tmp_path: Path) -> None:
    # 22:18 UTC is already the next day in Tokyo: Jekyll publishes it under the 28th.
    write(tmp_path, "_posts/2025-11-27-a.md", "date: 2025-11-27T22:18:56")
    post = only(tmp_path, timezone="Asia/Tokyo")
    assert post.date == datetime(2025, 11, 27, 22, 18, 56, tzinfo=UTC)
    assert post.date.tzinfo == TOKYO
    assert post.url.endswith("/2025/11/28/a.html")


def test_quoted_naive_time_is_in_site_zone(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", 'date: "2025-11-27 22:18:56"')
    post = only(tmp_path, timezone="Asia/Tokyo")
    assert post.date == datetime(2025, 11, 27, 22, 18, 56, tzinfo=TOKYO)
    assert post.url.endswith("/2025/11/27/a.html")


def test_aware_timestamp_with_offset(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "date: 2025-11-27T23:30:00+01:00")
    post = only(tmp_path)
    assert post.date == datetime(2025, 11, 27, 22, 30, tzinfo=UTC)
    assert post.date.tzinfo == LONDON


def test_aware_timestamp_z(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "date: 2025-11-27T20:00:00Z")
    post = only(tmp_path, timezone="Asia/Tokyo")
    assert post.date == datetime(2025, 11, 27, 20, tzinfo=UTC)
    assert post.url.endswith("/2025/11/28/a.html")


def test_jekyll_date_string_with_offset(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-25-a.md", "date: 2025-11-25 08:00:00 +0100")
    post = only(tmp_path)
    assert post.date == datetime(2025, 11, 25, 8, tzinfo=timezone(timedelta(hours=1)))
    assert post.date.utcoffset() == timedelta(0)  # converted to London (GMT in November)


def test_jekyll_date_string_offset_moves_url_day(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-25-a.md", "date: 2025-11-25 23:30:00 -0500")
    post = only(tmp_path)
    assert post.url.endswith("/2025/11/26/a.html")


def test_quoted_date_only_and_time_without_seconds(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-25-a.md", "date: '2025-11-26'")
    write(tmp_path, "_posts/2025-11-25-b.md", "date: 2025-11-26 07:05")
    posts = {p.slug: p for p in load_posts(site(tmp_path, timezone="Asia/Tokyo")).posts}
    assert posts["a"].date == datetime(2025, 11, 26, tzinfo=TOKYO)
    assert posts["b"].date == datetime(2025, 11, 26, 7, 5, tzinfo=TOKYO)


def test_an_unreadable_date_is_a_bad_date_problem_not_the_file_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Jekyll refuses to build such a post; it is listed as bad-date, never sent with a guess.
    write(tmp_path, "_posts/2025-11-25-bad.md", "title: Bad\ndate: next tuesday")
    write(tmp_path, "_posts/2025-11-26-good.md", "title: Good")
    loaded = load_posts(site(tmp_path))
    assert [p.slug for p in loaded.posts] == ["good"]
    (problem,) = loaded.problems
    assert isinstance(problem, BadDateError)
    assert problem.path.endswith("2025-11-25-bad.md") and "next tuesday" in problem.reason
    assert problem.title == "Bad"
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def test_ruby_lenient_dates_are_read_as_jekyll_reads_them(tmp_path: Path) -> None:
    # Ruby's Time.parse: the time is found anywhere; a zone it does not know is local time.
    write(tmp_path, "_posts/2021-02-08-a.md", "date: 2021-02-08 16:30-:00+16:30")
    write(tmp_path, "_posts/2020-01-23-b.md", "date: Thu Jan 23 15:35:26 PST 2020")
    write(tmp_path, "_posts/2021-09-03-c.md", "date: Fri Sep  3 11:21:31 CEST 2021")
    write(tmp_path, "_posts/2025-11-27-d.md", "date: 27.11.2025 3pm")
    posts = {p.slug: p.date for p in load_posts(site(tmp_path)).posts}
    assert posts["a"] == datetime(2021, 2, 8, 16, 30, tzinfo=LONDON)
    assert posts["b"] == datetime(2020, 1, 23, 23, 35, 26, tzinfo=UTC)
    assert posts["c"] == datetime(2021, 9, 3, 11, 21, 31, tzinfo=LONDON)  # CEST: not London's
    assert posts["d"] == datetime(2025, 11, 27, 15, tzinfo=LONDON)


def test_invalid_filename_date_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-13-45-a.md", "title: A")
    loaded = load_posts(site(tmp_path))
    assert loaded.posts == ()
    assert "invalid date" in loaded.problems[0].reason


def test_sorted_newest_first_ties_by_id(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-20-old.md", "title: Old")
    write(tmp_path, "_posts/2025-11-27-b.md", "title: B")
    write(tmp_path, "_posts/2025-11-27-a.md", "title: A")
    assert [p.slug for p in load_posts(site(tmp_path)).posts] == ["a", "b", "old"]


def test_future_and_unpublished_posts_stay_in_the_load(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2099-01-01-future.md", "title: Future")
    write(tmp_path, "_posts/2025-11-27-hidden.md", "title: Hidden\npublished: false")
    write(tmp_path, "_posts/2025-11-27-hugo.md", "title: Hugo draft\ndraft: true")
    posts = {p.slug: p for p in load_posts(site(tmp_path)).posts}
    assert posts["future"].published and not posts["future"].draft
    assert posts["hidden"].published is False
    assert posts["hugo"].draft is True and posts["hugo"].published is True


# --- files and folders -----------------------------------------------------------------------


def test_non_matching_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "title: A")
    write(tmp_path, "_posts/notes.md", "title: Not a post")
    write(tmp_path, "_posts/.2025-11-27-hidden.md", "title: Hidden")
    write(tmp_path, "_posts/2025-11-27-backup.md~", "title: Backup")
    (tmp_path / "_posts/2025-11-27-photo.jpg").write_bytes(b"\xff\xd8\xff\xe0binary")
    loaded = load_posts(site(tmp_path))
    assert [p.slug for p in loaded.posts] == ["a"]
    assert loaded.problems == ()


def test_markdown_without_front_matter_is_a_post(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Jekyll reads every _posts file with a dated name as a post, front matter or not.
    (tmp_path / "_posts").mkdir()
    (tmp_path / "_posts/2025-11-27-bare-words.md").write_text("Just text.\n", encoding="utf-8")
    post = only(tmp_path)
    assert post.title == "Bare Words"
    assert post.excerpt == "Just text."
    assert post.url == "https://blog.example.com/2025/11/27/bare-words.html"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_folder_categories_come_first(tmp_path: Path) -> None:
    write(tmp_path, "movies/horror/_posts/2025-11-27-scream.md", "categories: [Review, movies]")
    write(tmp_path, "_posts/2025-11-26-plain.md", "title: Plain")
    write(tmp_path, "_site/_posts/2025-11-26-built.md", "title: Built copy")
    write(tmp_path, "node_modules/x/_posts/2025-11-26-npm.md", "title: npm")
    write(tmp_path, ".git/_posts/2025-11-26-dot.md", "title: dot")
    posts = {p.slug: p for p in load_posts(site(tmp_path)).posts}
    assert set(posts) == {"scream", "plain"}
    scream = posts["scream"]
    assert scream.categories == ("movies", "horror", "Review")
    assert scream.id == "movies/horror/_posts/2025-11-27-scream.md"
    assert scream.url == "https://blog.example.com/movies/horror/review/2025/11/27/scream.html"


def test_subfolders_inside_posts_are_read_without_categories(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025/2025-11-27-a.md", "title: A")
    post = only(tmp_path)
    assert post.categories == ()
    assert post.id == "_posts/2025/2025-11-27-a.md"


def test_drafts_only_when_asked(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-26-real.md", "title: Real")
    draft = write(tmp_path, "_drafts/work-in-progress.md", "title: WIP")
    stamp = datetime(2025, 11, 20, 12, 0, tzinfo=UTC).timestamp()
    os.utime(draft, (stamp, stamp))
    assert [p.slug for p in load_posts(site(tmp_path)).posts] == ["real"]
    posts = {p.slug: p for p in load_posts(site(tmp_path), include_drafts=True).posts}
    wip = posts["work-in-progress"]
    assert wip.draft is True
    assert wip.date == datetime(2025, 11, 20, 12, tzinfo=UTC)
    assert wip.id == "_drafts/work-in-progress.md"


def test_draft_front_matter_date_wins_over_mtime(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-26-real.md", "title: Real")
    write(tmp_path, "_drafts/idea.md", "date: 2025-10-01")
    posts = {p.slug: p for p in load_posts(site(tmp_path), include_drafts=True).posts}
    assert posts["idea"].date == datetime(2025, 10, 1, tzinfo=LONDON)


def test_missing_posts_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"site\.posts_dir"):
        load_posts(site(tmp_path))


# --- categories and tags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("categories: [News, World]", ("News", "World")),
        ("categories:\n  - News\n  - World", ("News", "World")),
        ("categories: News World", ("News", "World")),
        ("category: Big News", ("Big News",)),
        ("categories: News\ncategory: Big News", ("News", "Big News")),
        ("categories:", ()),
        ("categories: []", ()),
        ("categories: ''", ()),
        ("categories: [News, News, news]", ("News", "news")),
        ("categories: [2025, yes]", ("2025", "yes")),
    ],
)
def test_category_forms(tmp_path: Path, front: str, expected: tuple[str, ...]) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", front)
    assert only(tmp_path).categories == expected


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("tags: [python, Jekyll]", ("python", "Jekyll")),
        ("tags: python jekyll", ("python", "jekyll")),
        ("tag: open source", ("open source",)),
        ("tags:", ()),
    ],
)
def test_tag_forms(tmp_path: Path, front: str, expected: tuple[str, ...]) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", front)
    assert only(tmp_path).tags == expected


def test_category_names_keep_case_but_urls_lower_case(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "categories: ['Big News', News]")
    post = only(tmp_path)
    assert post.categories == ("Big News", "News")
    assert post.url == "https://blog.example.com/big%20news/news/2025/11/27/a.html"


# --- title, author, YAML traps ---------------------------------------------------------------


def test_title_from_slug_when_missing(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-big-NEWS-today.md", "layout: post")
    assert only(tmp_path).title == "Big News Today"


@pytest.mark.parametrize(
    ("front", "title"),
    [
        ("title: yes", "yes"),
        ("title: No", "No"),
        ("title: 10:00", "10:00"),
        ("title: 2025", "2025"),
        ("title: 1.50", "1.50"),
        ("title: 2025-11-27", "2025-11-27"),
        ("title: >\n  folded\n  over lines", "folded over lines"),
    ],
)
def test_yaml_traps_in_title_keep_the_written_text(tmp_path: Path, front: str, title: str) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", front)
    assert only(tmp_path).title == title


def test_title_that_is_a_list_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "title: [a, b]")
    write(tmp_path, "_posts/2025-11-27-b.md", "title: B")
    loaded = load_posts(site(tmp_path))
    assert [p.title for p in loaded.posts] == ["B"]
    assert "title must be text" in loaded.problems[0].reason


def test_yaml_error_is_a_problem_and_others_load(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-broken.md", "title: Broken: a colon: here\n  bad: [")
    write(tmp_path, "_posts/2025-11-27-fine.md", "title: Fine")
    loaded = load_posts(site(tmp_path))
    assert [p.title for p in loaded.posts] == ["Fine"]
    assert loaded.problems[0].path == str(tmp_path / "_posts/2025-11-27-broken.md")
    assert "not valid YAML" in loaded.problems[0].reason


def test_undecodable_bytes_are_a_problem(tmp_path: Path) -> None:
    (tmp_path / "_posts").mkdir()
    (tmp_path / "_posts/2025-11-27-latin1.md").write_bytes(b"---\ntitle: Caf\xe9\n---\nText\n")
    loaded = load_posts(site(tmp_path))
    assert loaded.posts == ()
    assert "not valid UTF-8" in loaded.problems[0].reason


def test_author_forms(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "author: Jane Doe")
    write(tmp_path, "_posts/2025-11-26-b.md", "author: {name: John, twitter: jd}")
    write(tmp_path, "_posts/2025-11-25-c.md", "author: [Ann, Bob]")
    write(tmp_path, "_posts/2025-11-24-d.md", "title: D")
    authors = {p.slug: p.author for p in load_posts(site(tmp_path)).posts}
    assert authors == {"a": "Jane Doe", "b": "John", "c": "Ann, Bob", "d": None}


# --- encoding --------------------------------------------------------------------------------


def test_bom_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "_posts").mkdir()
    text = "---\r\ntitle: Windows post\r\ncategories: [News]\r\n---\r\n\r\nOne.\r\n\r\nTwo.\r\n"
    (tmp_path / "_posts/2025-11-27-win.md").write_bytes(b"\xef\xbb\xbf" + text.encode())
    post = only(tmp_path)
    assert post.title == "Windows post"
    assert post.categories == ("News",)
    # CRLF throughout: Jekyll's default separator "\n\n" is not in the file, so the excerpt
    # is the whole post (its line ends made Unix ones).
    assert post.excerpt == "One.\n\nTwo."
    assert "\r" not in post.content


def test_mojibake_is_repaired(tmp_path: Path) -> None:
    write(
        tmp_path,
        "_posts/2025-11-27-a.md",
        'title: "Peace talks â€“ day two"\nauthor: "JosÃ©"',
        "Talks resumed â€“ slowly. “Quotes” stay curly.\n",
    )
    post = only(tmp_path)
    assert post.title == "Peace talks – day two"
    assert post.author == "José"
    assert post.content == "Talks resumed – slowly. “Quotes” stay curly."
    assert post.excerpt == post.content


# --- excerpts --------------------------------------------------------------------------------


def test_excerpt_is_first_paragraph(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "title: A", "First *para*\ngoes on.\n\nSecond.\n")
    assert only(tmp_path).excerpt == "First *para*\ngoes on."


def test_front_matter_excerpt_wins(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "excerpt: Chosen words.")
    assert only(tmp_path).excerpt == "Chosen words."


def test_excerpt_separator_per_post(tmp_path: Path) -> None:
    write(
        tmp_path,
        "_posts/2025-11-27-a.md",
        "excerpt_separator: <!--more-->",
        "Intro one.\n\nIntro two.\n<!--more-->\nRest.\n",
    )
    assert only(tmp_path).excerpt == "Intro one.\n\nIntro two."


def test_excerpt_separator_site_wide(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "title: A", "Intro.\n\nMore.\n<!--more-->\nRest.\n")
    assert only(tmp_path, excerpt_separator="<!--more-->").excerpt == "Intro.\n\nMore."


def test_empty_separator_turns_excerpts_off(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", 'excerpt_separator: ""')
    assert only(tmp_path).excerpt == ""
    write(tmp_path, "_posts/2025-11-27-a.md", "title: A")
    assert only(tmp_path, excerpt_separator="").excerpt == ""


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permalink", "path"),
    [
        ("date", "/news/2025/11/27/big-news.html"),
        ("pretty", "/news/2025/11/27/big-news/"),
        ("ordinal", "/news/2025/331/big-news.html"),
        ("weekdate", "/news/2025/W48/Thu/big-news.html"),
        ("none", "/news/big-news.html"),
        ("/blog/:year/:i_month/:i_day/:slug/", "/blog/2025/11/27/big-news/"),
        (
            "/:short_year/:short_month/:long_month/:long_day/:title:output_ext",
            "/25/Nov/November/Thursday/big-news.html",
        ),
        ("/:year/:month/:day/:hour:minute:second/:title", "/2025/11/27/091500/big-news"),
    ],
)
def test_permalink_styles(tmp_path: Path, permalink: str, path: str) -> None:
    write(tmp_path, "_posts/2025-11-27-big-news.md", "categories: [News]\ndate: '2025-11-27 09:15'")
    assert only(tmp_path, permalink=permalink).url == "https://blog.example.com" + path


def test_unknown_permalink_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "title: A")
    with pytest.raises(ConfigError, match=r"site\.permalink"):
        load_posts(site(tmp_path, permalink="prettty"))
    with pytest.raises(ConfigError, match=":nope"):
        load_posts(site(tmp_path, permalink="/:year/:nope/"))


def test_front_matter_slug_replaces_title(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-big-news.md", "slug: Other Words\ncategories: [News]")
    post = only(tmp_path)
    assert post.slug == "Other Words"
    assert post.url == "https://blog.example.com/news/2025/11/27/Other-Words.html"


def test_front_matter_permalink_wins(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "permalink: /special/page/\ncategories: [News]")
    assert only(tmp_path).url == "https://blog.example.com/special/page/"
    write(tmp_path, "_posts/2025-11-27-a.md", "permalink: /archive/:year/:title/")
    assert only(tmp_path).url == "https://blog.example.com/archive/2025/a/"


def test_baseurl_is_part_of_urls_and_images(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "image: /assets/a.jpg")
    post = only(tmp_path, baseurl="/blog")
    assert post.url == "https://blog.example.com/blog/2025/11/27/a.html"
    assert post.image == "https://blog.example.com/blog/assets/a.jpg"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("assets/images/x.jpg", "https://blog.example.com/assets/images/x.jpg"),
        ("/assets/images/x.jpg", "https://blog.example.com/assets/images/x.jpg"),
        ("https://cdn.example.net/x.jpg", "https://cdn.example.net/x.jpg"),
        ("//cdn.example.net/x.jpg", "https://cdn.example.net/x.jpg"),
        ("{path: assets/y.png, height: 100}", "https://blog.example.com/assets/y.png"),
        ("assets/my photo.jpg", "https://blog.example.com/assets/my%20photo.jpg"),
    ],
)
def test_image_urls(tmp_path: Path, image: str, expected: str) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", f"image: {image}")
    assert only(tmp_path).image == expected


def test_no_image(tmp_path: Path) -> None:
    write(tmp_path, "_posts/2025-11-27-a.md", "title: A")
    assert only(tmp_path).image is None


def test_jekyll_config_beside_posts_fills_site(tmp_path: Path) -> None:
    blog = tmp_path / "blog"
    write(blog, "_posts/2025-11-27-late.md", "date: 2025-11-27T20:00:00\ncategories: [News]")
    (blog / "_config.yml").write_text(
        "url: https://jekyll.example.org\nbaseurl: /b\ntimezone: Asia/Tokyo\npermalink: pretty\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  title: T\n  posts_dir: blog/_posts\nemail:\n  from: news@example.com\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    post = load_posts(settings.site).posts[0]
    assert post.url == "https://jekyll.example.org/b/news/2025/11/28/late/"
    assert post.date.tzinfo == TOKYO


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("---\n- a\n- b\n---\nbody\n", "keys and values"),
        ("---\ntitle: [x\n---\nbody\n", "not valid YAML"),
    ],
)
def test_broken_front_matter_is_reported(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "_posts").mkdir()
    (tmp_path / "_posts/2025-01-01-x.md").write_text(text, encoding="utf-8")
    loaded = load_posts(site(tmp_path))
    assert loaded.posts == ()
    assert reason in loaded.problems[0].reason


def test_empty_front_matter_is_a_post(tmp_path: Path) -> None:
    (tmp_path / "_posts").mkdir()
    (tmp_path / "_posts/2025-01-02-empty.md").write_text("---\n---\n    code\n", encoding="utf-8")
    post = only(tmp_path)
    assert post.title == "Empty"
    assert post.content == "    code"


def test_loose_filename_date_and_unicode_slug(tmp_path: Path) -> None:
    write(tmp_path, "_posts/25-1-6-café au lait.md", "title: Café")
    post = only(tmp_path)
    assert post.date == datetime(2025, 1, 6, tzinfo=LONDON)
    assert post.url == "https://blog.example.com/2025/01/06/caf%C3%A9-au-lait.html"
