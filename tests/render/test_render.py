"""render: golden emails, sanitised excerpts, one premailer run per segment, cheap personalise.

Golden files: tests/golden/<case>/case.json describes the posts; expected.{html,txt,subject}
hold the output. DIGEST_UPDATE_GOLDEN=1 rewrites them (review the diff).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from digest.errors import ConfigError
from digest.mail.message import FillIn
from digest.render.excerpts import ExcerptFormatter, html_to_text
from digest.render.renderer import (
    EMAIL_PLACEHOLDER,
    GMAIL_CLIP_BYTES,
    NAME_PLACEHOLDER,
    PLACEHOLDERS,
    UNSUBSCRIBE_URL_PLACEHOLDER,
    Renderer,
    bundled_templates_dir,
)
from digest.settings import Settings, SiteSettings
from digest.sources.post import Post
from tests.helpers.posts import AS_OF, make_post, write_config

GOLDEN = Path(__file__).parents[1] / "golden"
UNSUB = "https://news.example.com/unsubscribe/tok.EN-123?x=1&y=2"
PREFS = "https://news.example.com/preferences/tok.PR-456?a=1&b=2"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return write_config(tmp_path)


def render(
    settings: Settings, posts: list[Post], digest: str = "weekly"
) -> tuple[Renderer, str, str, str]:
    renderer = Renderer(settings)
    segment = renderer.render_segment(settings.digest(digest), posts, as_of=AS_OF)
    html, text = renderer.personalise(
        segment, name="Bob", email="bob@example.org", unsubscribe_url=UNSUB
    )
    return renderer, segment.subject, html, text


# -- golden files ---------------------------------------------------------------------------


def _case_posts(case: dict[str, Any]) -> list[Post]:
    return [
        make_post(
            i,
            title=p["title"],
            excerpt=p.get("excerpt", ""),
            image=p.get("image"),
            categories=tuple(p.get("categories", ["News"])),
            author=p.get("author"),
            day=p["day"],
        )
        for i, p in enumerate(case["posts"])
    ]


CASES = sorted(p.parent.name for p in GOLDEN.glob("*/case.json"))


def test_golden_cases_exist() -> None:
    assert {"weekly", "empty", "movies"} <= set(CASES)


@pytest.mark.parametrize("case_name", CASES)
def test_golden(case_name: str, tmp_path: Path) -> None:
    folder = GOLDEN / case_name
    case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    settings = write_config(tmp_path, site_extra=case.get("site_extra", ""))
    renderer = Renderer(settings)
    segment = renderer.render_segment(
        settings.digest(case["digest"]), _case_posts(case), as_of=AS_OF
    )
    html, text = renderer.personalise(
        segment,
        name=case["name"],
        email="bob@example.org",
        unsubscribe_url=UNSUB,
        preferences_url=PREFS,
    )
    outputs = {"expected.html": html, "expected.txt": text, "expected.subject": segment.subject}
    if os.environ.get("DIGEST_UPDATE_GOLDEN") == "1":
        for filename, value in outputs.items():
            (folder / filename).write_text(value, encoding="utf-8", newline="")
    for filename, value in outputs.items():
        expected = (folder / filename).read_text(encoding="utf-8")
        assert value == expected, f"{case_name}/{filename} differs (DIGEST_UPDATE_GOLDEN=1)"
    assert not any(p in html or p in text for p in PLACEHOLDERS)


# -- safety ---------------------------------------------------------------------------------


def test_script_title_is_shown_as_text(settings: Settings) -> None:
    post = make_post(1, title="<script>alert('t')</script> & friends")
    _, subject, html, text = render(settings, [post])
    assert "<script>" not in html
    assert "&lt;script&gt;alert('t')&lt;/script&gt; &amp; friends" in html
    assert "<script>alert('t')</script> & friends" in text  # the text part is not HTML
    assert subject == "Example Blog: 1 new post"


def test_excerpt_html_is_sanitised(settings: Settings) -> None:
    excerpt = (
        "Hello <script>alert('x')</script>world.\n\n"
        '<img src="/a.png" onerror="alert(1)" alt="pic">\n\n'
        '[bad](javascript:alert(1)) and <a href="javascript:alert(2)">raw</a> '
        '<a href="JaVaScRiPt:alert(3)">mixed</a> <span style="color:red" onclick="x()">s</span>'
        "\n\n<style>body{display:none}</style><iframe src=https://evil.example></iframe>"
    )
    _, _, html, _ = render(settings, [make_post(1, excerpt=excerpt)])
    body = html.split("<body", 1)[1]
    assert "<script" not in body and "alert('x')" not in body
    assert "onerror" not in body and "onclick" not in body
    urls = re.findall(r"""(?:href|src)=["']([^"']*)""", body)
    assert urls and not any(u.strip().lower().startswith("javascript") for u in urls)
    assert "<iframe" not in body and "display:none}" not in body
    assert ">raw</a>" in body and ">mixed</a>" in body  # kept as text, without the link
    assert "Hello world." in body
    assert '<img src="https://blog.example.com/a.png" alt="pic"' in body


def test_relative_links_and_images_made_absolute(tmp_path: Path) -> None:
    settings = write_config(tmp_path, site_extra="  baseurl: /blog\n")
    excerpt = (
        "See [about](/about/), [notes](notes/x.html), [top](#top) and "
        '![chart]({{ "/assets/chart.png" | relative_url }}) and ![pic](images/p.png) '
        "and [mail](mailto:hi@example.com)."
    )
    _, _, html, text = render(settings, [make_post(1, excerpt=excerpt)])
    assert 'href="https://blog.example.com/about/"' in html
    assert 'href="https://blog.example.com/blog/notes/x.html"' in html
    assert 'href="https://blog.example.com/blog/#top"' in html
    assert 'src="https://blog.example.com/blog/assets/chart.png"' in html
    assert 'src="https://blog.example.com/blog/images/p.png"' in html
    assert 'href="mailto:hi@example.com"' in html
    assert "about (https://blog.example.com/about/)" in text
    assert 'href="https://blog.example.com/blog/"' in html  # the site link keeps the baseurl


def test_subject_is_one_line_and_from_the_template(settings: Settings) -> None:
    post = make_post(1, title="Line one\r\nBcc: evil@example.com", categories=("Movies",))
    _, subject, _, _ = render(settings, [post], digest="movies")
    assert subject == "Example Blog movies: Line one Bcc: evil@example.com"
    assert "\n" not in subject and "\r" not in subject


def test_subject_with_undefined_variable_names_the_key(tmp_path: Path) -> None:
    settings = write_config(
        tmp_path, extra='  broken:\n    subject: "{{ site.title }} {{ nonsense }}"\n'
    )
    with pytest.raises(ConfigError, match=r"digests\.broken\.subject: 'nonsense' is undefined"):
        render(settings, [make_post(1)], digest="broken")


# -- one premailer run per segment, cheap personalise ----------------------------------------


def test_thousand_subscribers_in_three_segments_run_premailer_three_times(
    settings: Settings,
) -> None:
    from digest.selection.rules import share_for
    from tests.helpers.segments import group_segments

    posts = [
        make_post(1, categories=("News",)),
        make_post(2, categories=("Movies",)),
        make_post(3, categories=("News", "Movies")),
    ]
    choices: list[list[str]] = [[], ["news"], ["Movies"]]
    subscribers = [((i, f"user{i}@example.org", f"User {i}"), choices[i % 3]) for i in range(1000)]
    groups = group_segments(posts, subscribers)
    assert len(groups) == 3
    renderer = Renderer(settings)
    digest = settings.digest("weekly")
    by_id = {p.id: p for p in posts}
    outputs: dict[str, str] = {}
    for post_ids, members in groups.items():
        share = [by_id[i] for i in post_ids]
        segment = renderer.render_segment(digest, share, as_of=AS_OF)
        for sub_id, email, name in members:
            html, _ = renderer.personalise(
                segment, name=name, email=email, unsubscribe_url=f"{UNSUB}&id={sub_id}"
            )
            outputs[email] = html
    assert renderer.premailer_runs == 3
    assert len(outputs) == 1000
    movies_only = outputs["user2@example.org"]
    assert "Post number 2" in movies_only and "Post number 1<" not in movies_only
    assert share_for(posts, ["Movies"]) == [posts[1], posts[2]]
    assert "User 2" in movies_only and "id=2" in movies_only


def test_personalise_escapes_html_and_keeps_text_raw(settings: Settings) -> None:
    renderer = Renderer(settings)
    segment = renderer.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
    assert UNSUBSCRIBE_URL_PLACEHOLDER in segment.html
    assert f'href="{UNSUBSCRIBE_URL_PLACEHOLDER}"' in segment.html  # premailer left it alone
    assert EMAIL_PLACEHOLDER in segment.text
    html, text = renderer.personalise(
        segment, name="<b>Bob & Co</b>", email="bob@example.org", unsubscribe_url=UNSUB
    )
    assert "Hi &lt;b&gt;Bob &amp; Co&lt;/b&gt;," in html
    assert "<b>Bob" not in html
    assert 'href="https://news.example.com/unsubscribe/tok.EN-123?x=1&amp;y=2"' in html
    assert "Hi <b>Bob & Co</b>," in text
    assert f"Unsubscribe: {UNSUB}" in text
    assert not any(p in html or p in text for p in PLACEHOLDERS)


def test_personalise_does_not_expand_placeholders_inside_values(settings: Settings) -> None:
    renderer = Renderer(settings)
    segment = renderer.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
    html, text = renderer.personalise(
        segment, name=UNSUBSCRIBE_URL_PLACEHOLDER, email="a@example.org", unsubscribe_url=UNSUB
    )
    assert f"Hi {UNSUBSCRIBE_URL_PLACEHOLDER}," in text
    assert NAME_PLACEHOLDER not in html


def test_no_name_greets_there(settings: Settings) -> None:
    renderer = Renderer(settings)
    segment = renderer.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
    html, text = renderer.personalise(
        segment, name="", email="a@example.org", unsubscribe_url=UNSUB
    )
    assert "Hi there, here is 1 new post" in text
    assert "Hi there," in html


# -- the HTML as email clients need it --------------------------------------------------------


def test_media_queries_stay_in_head_and_styles_are_inlined(settings: Settings) -> None:
    post = make_post(1, image="https://blog.example.com/img/a.jpg")
    _, _, html, _ = render(settings, [post])
    head, body = html.split("<body", 1)
    assert "@media (prefers-color-scheme:dark)" in head
    assert "@media only screen and (max-width:620px)" in head
    assert "[data-ogsc]" in head
    assert "<style" not in body
    assert re.search(r"<td class=\"card\"[^>]* style=[\"'][^\"']*background-color", body)
    assert re.search(r"<a class=\"site\"[^>]* style=[\"'][^\"']*font-weight:700", body)
    assert '<meta name="color-scheme" content="light dark">' in head
    assert '<html lang="en"' in html
    img = re.search(r"<img [^>]*>", body)
    assert img is not None
    tag = img.group(0)
    assert 'width="560"' in tag and 'alt="Post number 1"' in tag
    assert 'src="https://blog.example.com/img/a.jpg"' in tag and "display:block" in tag
    assert 'role="presentation"' in body and "<!--[if mso]>" in body
    assert body.index("Post number 1") > body.index('class="preheader"')


def test_preheader_lists_titles(settings: Settings) -> None:
    renderer = Renderer(settings)
    posts = [make_post(1, title="First"), make_post(2, title="Second")]
    segment = renderer.render_segment(settings.digest("weekly"), posts, as_of=AS_OF)
    assert segment.preheader == "First · Second"
    assert re.search(r'class="preheader"[^>]*>First · Second', segment.html)


def test_twenty_long_posts_stay_under_gmail_clip(settings: Settings) -> None:
    paragraph = (
        "The council met on Tuesday to discuss the [cycle lanes](/lanes/) along the river, "
        "and after two hours of *debate* voted to extend the trial until spring. "
    )
    posts = [
        make_post(
            i,
            title=f"A rather long headline for post {i} about the council and the lanes",
            excerpt=(paragraph * 40 + "\n\n") * 2,  # ~13,000 characters each
            image=f"https://blog.example.com/assets/2025/11/a-long-image-name-{i}.jpg",
            categories=("News", "Local politics", "Cycling"),
        )
        for i in range(20)
    ]
    _, _, html, text = render(settings, posts)
    assert len(html.encode("utf-8")) < GMAIL_CLIP_BYTES
    assert "Unsubscribe" in html and html.count("Read more") == 20
    assert "…" in text


def test_empty_segment_renders(settings: Settings) -> None:
    _, subject, html, text = render(settings, [])
    assert subject == "Example Blog: 0 new posts"
    assert "no new posts" in text and "Unsubscribe" in html


def test_text_part_reads_alone(settings: Settings) -> None:
    excerpt = "Some **bold** text with a [link](https://x.example/y).\n\n- one\n- two\n\n> quoted"
    post = make_post(1, excerpt=excerpt, image="https://blog.example.com/i.jpg")
    _, _, _, text = render(settings, [post])
    assert "<" not in text and "**" not in text
    assert "Post number 1\n26 November 2025 · Ada Lovelace · News\n" in text
    assert "Some bold text with a link (https://x.example/y).\n\n- one\n- two\n\n> quoted" in text
    assert "Read more: https://blog.example.com/2025/11/26/post-1.html" in text
    assert "You get this because you subscribed to Example Blog (all posts)" in text


def test_html_to_text_wraps_without_breaking_urls() -> None:
    url = "https://example.com/" + "x" * 90
    text = html_to_text(f"<p>{'word ' * 30}<a href='{url}'>here</a></p>", width=40)
    assert all(len(line) <= 40 for line in text.splitlines() if url not in line)
    assert url in text


# -- templates: overrides and errors --------------------------------------------------------


def test_bundled_templates_exist() -> None:
    folder = bundled_templates_dir()
    assert (folder / "digest.html.j2").is_file() and (folder / "digest.txt.j2").is_file()


def test_templates_dir_overrides_the_bundled_one(tmp_path: Path) -> None:
    custom = tmp_path / "mytemplates"
    custom.mkdir()
    (custom / "digest.txt.j2").write_text(
        "CUSTOM {{ posts|length }} for {{ subscriber.name }}\n", encoding="utf-8"
    )
    settings = write_config(tmp_path, extra="templates_dir: mytemplates\n")
    _, _, html, text = render(settings, [make_post(1)])
    assert text == "CUSTOM 1 for Bob\n"
    assert "Post number 1" in html  # the HTML still comes from the bundled template


def test_undefined_variable_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    custom = tmp_path / "t"
    custom.mkdir()
    (custom / "digest.html.j2").write_text(
        "<html><body>\n{{ site.title }}\n{{ post_count }}\n</body></html>", encoding="utf-8"
    )
    settings = write_config(tmp_path, extra="templates_dir: t\n")
    with pytest.raises(ConfigError) as info:
        render(settings, [make_post(1)])
    message = str(info.value)
    assert str(custom / "digest.html.j2") + ":3" in message
    assert "'post_count' is undefined" in message
    assert info.value.exit_code == 2


def test_template_syntax_error_names_the_file(tmp_path: Path) -> None:
    custom = tmp_path / "t"
    custom.mkdir()
    (custom / "digest.txt.j2").write_text("ok\n{% for x in posts %}\nno end\n", encoding="utf-8")
    settings = write_config(tmp_path, extra="templates_dir: t\n")
    with pytest.raises(ConfigError, match=r"digest\.txt\.j2:\d+: template syntax error"):
        render(settings, [make_post(1)])


def test_missing_template_is_a_config_error(tmp_path: Path) -> None:
    settings = write_config(tmp_path, extra="  fancy:\n    template: fancy\n")
    with pytest.raises(ConfigError, match=r"template fancy\.html\.j2 not found"):
        render(settings, [make_post(1)], digest="fancy")


def test_background_and_hidden_preheader_need_nothing_clients_drop(settings: Settings) -> None:
    """Outlook's and Yahoo's apps drop <body> styles; Outlook for Windows and Gmail's mobile
    web ignore display:none, opacity and overflow (caniemail): the design must not need them."""
    _, _, html, _ = render(settings, [make_post(1)])
    body = re.search(r"<body[^>]*>", html)
    assert body is not None and "background" not in body.group(0)
    assert "bgcolor" not in body.group(0)
    wrapper = re.search(r'<table role="presentation" class="bg"[^>]*>', html)
    assert wrapper is not None and 'bgcolor="#eef0f3"' in wrapper.group(0)
    assert "background-color:#eef0f3" in wrapper.group(0)
    preheader = re.search(r'<div class="preheader" style="([^"]*)"', html)
    assert preheader is not None
    style = preheader.group(1).replace(" ", "")
    for needed in ("mso-hide:all", "font-size:0", "line-height:0", "max-height:0"):
        assert needed in style
    for dropped in ("display:none", "opacity", "overflow"):
        assert dropped not in style


def test_fill_in_replaces_each_placeholder_once_like_the_one_pass_substitution() -> None:
    body = (
        f"{NAME_PLACEHOLDER}<p>Zoë {EMAIL_PLACEHOLDER}{NAME_PLACEHOLDER}</p>\r\n{EMAIL_PLACEHOLDER}"
    )
    values = {p: f"<{i}>" for i, p in enumerate(PLACEHOLDERS)}
    values[NAME_PLACEHOLDER] = f"Ann {EMAIL_PLACEHOLDER} ü"  # a value is never expanded again
    expected = body
    for placeholder in PLACEHOLDERS:
        expected = expected.replace(placeholder, f"\0{placeholder}\0")
    for placeholder, value in values.items():
        expected = expected.replace(f"\0{placeholder}\0", value)
    assert FillIn(body).fill(values) == expected.encode("utf-8")
    assert FillIn("no placeholders at all").fill(values) == b"no placeholders at all"


def test_an_image_whose_data_uri_is_not_allowed_leaves_no_empty_image() -> None:
    # A leading inline data: image (its src is not an allowed scheme) would be a broken-image
    # box in the mail; the text after it stays.
    formatter = ExcerptFormatter(SiteSettings(title="T", url="https://blog.example.com"))
    html = formatter.to_html(
        '![logo](data:image/png;base64,iVBORw0KGgo) Hello.\n\n<img src="data:image/gif;x">\n\n'
        "![chart](/chart.png)"
    )
    assert (
        html
        == '<p> Hello.</p>\n\n<p><img src="https://blog.example.com/chart.png" alt="chart"></p>'
    )
