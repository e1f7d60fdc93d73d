"""liquid.py: Jekyll's filters and tags in excerpts, and unknown Liquid rendered as nothing."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from digest.sources.jekyll.limits import TimedTemplate
from digest.sources.jekyll.liquid import JekyllLiquid
from digest.sources.markdown import markdown_to_html

SITE = {"data": {"releases": [{"version": "3.4.0", "url": "u-340"}, {"version": "3.3.0"}]}}
PAGE = {"title": "Hello", "date": datetime(2025, 11, 27, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo"))}


def render(source: str) -> str:
    liquid = JekyllLiquid(
        url="https://blog.example.org",
        baseurl="/b",
        post_urls={"_posts/2020-01-01-first.md": "/2020/01/01/first.html"},
        markdown=markdown_to_html,
    )
    return liquid.render_excerpt(source, page=PAGE, site=SITE, where="post.md")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '/x.png' | relative_url }}", "/b/x.png"),
        ("{{ 'x.png' | absolute_url }}", "https://blog.example.org/b/x.png"),
        ("{{ 'https://a.org/x' | absolute_url }}", "https://a.org/x"),
        ("{{ page.date | date_to_xmlschema }}", "2025-11-27T09:30:00+09:00"),
        ("{{ page.date | date_to_string }}", "27 Nov 2025"),
        ("{{ '*hi*' | markdownify }}", "<p><em>hi</em></p>\n"),
        (
            '{% assign r = site.data.releases | where: "version", "3.4.0" | first %}{{ r.url }}',
            "u-340",
        ),
        ("{{ page.title }}", "Hello"),
        ("{% link _posts/2020-01-01-first.md %}", "/b/2020/01/01/first.html"),
        ("{% post_url 2020-01-01-first %}", "/b/2020/01/01/first.html"),
        ("{% raw %}{{ kept }}{% endraw %}", "{{ kept }}"),
        (
            "{% highlight ruby %}a < b{% endhighlight %}",
            '<figure class="highlight"><pre><code class="language-ruby" data-lang="ruby">'
            "a &lt; b</code></pre></figure>",
        ),
        ("no liquid at all", "no liquid at all"),
    ],
)
def test_jekyll_filters_and_tags(source: str, expected: str) -> None:
    assert render(source) == expected


def test_unknown_tag_and_filter_are_nothing_in_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert render("a {% youtube x %} b {{ 1 | shout }} c {% youtube y %}") == "a  b  c "
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "post.md: Liquid unexpected tag 'youtube'; unknown filter 'shout' (rendered as nothing)"
    ]


def test_a_missing_post_link_is_nothing_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert render("[x]({% link _posts/gone.md %})") == "[x]()"
    assert "link: no post '_posts/gone.md'" in caplog.text


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("{% for i in (1..1000000000) %}x{% endfor %}", "loop iteration limit"),
        (
            "{% assign s = 'ab' %}{% for i in (1..60) %}{% assign s = s | append: s %}"
            "{% endfor %}{{ s | size }}",
            "local namespace limit",
        ),
        ("{% for i in (1..300) %}{% for j in (1..300) %}{{ i }}{% endfor %}{% endfor %}", "time"),
    ],
)
def test_a_runaway_template_stops_at_a_limit_with_one_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, source: str, limit: str
) -> None:
    if limit == "time":
        # 90,300 iterations stay under every other limit; a quiet machine runs them in less
        # than the real second, so the deadline is brought within what any machine takes.
        monkeypatch.setattr(TimedTemplate, "seconds", 0.02)
    with caplog.at_level(logging.WARNING):
        rendered = render(f"Before. {source} After.")
    # The post keeps its text; its Liquid is left out.
    assert rendered.startswith("Before. ") and rendered.endswith(" After.")
    assert "{" not in rendered and len(rendered) < 30
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("post.md: Liquid stopped at a limit: ") and limit in warning
