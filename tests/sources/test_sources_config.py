"""site.source, site.root, site.sections, site.feed_url, site.lang: detected, resolved, checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from digest.config import load_settings
from digest.errors import ConfigError

HUGO_FIXTURE = Path(__file__).parents[1] / "data" / "hugo_site"
FEED_FIXTURE = Path(__file__).parents[1] / "data" / "feeds" / "hugo-rss.xml"


def _config(folder: Path, site: dict[str, object]) -> Path:
    path = folder / "config.yaml"
    data = {"site": site, "email": {"from": "News <news@example.com>"}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_hugo_site_is_detected_and_fills_title_url_zone_and_language(tmp_path: Path) -> None:
    shutil.copytree(HUGO_FIXTURE, tmp_path / "blog")
    settings = load_settings(_config(tmp_path, {"root": "blog"}))
    site = settings.site
    assert site.source == "hugo"
    assert site.root == tmp_path / "blog"
    assert (site.title, site.url) == ("Fixture", "https://example.org/blog")
    assert (site.timezone, site.lang) == ("America/New_York", "en")


def test_the_digest_config_wins_over_hugos(tmp_path: Path) -> None:
    shutil.copytree(HUGO_FIXTURE, tmp_path / "blog")
    site = {
        "root": "blog",
        "title": "Mine",
        "url": "https://news.example.net",
        "lang": "fr",
        "sections": "posts notes",
        "timezone": "Europe/Paris",
    }
    settings = load_settings(_config(tmp_path, site))
    assert settings.site.title == "Mine" and settings.site.url == "https://news.example.net"
    assert settings.site.lang == "fr" and settings.site.timezone == "Europe/Paris"
    assert settings.site.sections == ("posts", "notes")


def test_a_feed_url_means_a_feed_and_a_file_resolves_against_the_config(tmp_path: Path) -> None:
    shutil.copy(FEED_FIXTURE, tmp_path / "index.xml")
    site = {"title": "T", "url": "https://example.org", "feed_url": "index.xml"}
    settings = load_settings(_config(tmp_path, site))
    assert settings.site.source == "feed"
    assert settings.site.feed_url == str(tmp_path / "index.xml")
    remote = {**site, "feed_url": "https://example.org/index.xml"}
    assert load_settings(_config(tmp_path, remote)).site.feed_url == remote["feed_url"]


def test_without_hints_the_site_is_jekyll(tmp_path: Path) -> None:
    (tmp_path / "_posts").mkdir()
    (tmp_path / "content").mkdir()  # beside digest's own config.yaml: still not a Hugo site
    settings = load_settings(_config(tmp_path, {"title": "T", "url": "https://example.org"}))
    assert settings.site.source == "jekyll"
    assert settings.site.posts_dir == tmp_path / "_posts"


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ({"source": "hugo"}, r"site\.root: .* is not a Hugo site"),
        ({"source": "feed"}, r"site\.feed_url: required when site\.source is feed"),
        ({"feed_url": "nowhere.xml"}, r"site\.feed_url: .*nowhere\.xml is neither an http"),
        ({"source": "wordpress"}, r"site\.source: Input should be 'jekyll', 'hugo' or 'feed'"),
        ({"lang": "english!"}, r"site\.lang: 'english!' is not a language tag"),
    ],
)
def test_source_problems_name_the_key(
    tmp_path: Path, site: dict[str, object], message: str
) -> None:
    (tmp_path / "_posts").mkdir()
    path = _config(tmp_path, {"title": "T", "url": "https://example.org", **site})
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(path)
    assert caught.value.exit_code == 2


def test_a_hugo_title_set_per_language_is_the_chosen_languages(tmp_path: Path) -> None:
    shutil.copytree(HUGO_FIXTURE, tmp_path / "blog")
    config = tmp_path / "blog" / "hugo.toml"
    text = config.read_text(encoding="utf-8").replace('title = "Fixture"\n', "")
    text = text.replace("[languages.fr]\n", '[languages.fr]\n    title = "Le Fixture"\n')
    config.write_text(text.replace("[languages.en]\n", '[languages.en]\n    title = "En"\n'))
    assert load_settings(_config(tmp_path, {"root": "blog"})).site.title == "En"
    french = load_settings(_config(tmp_path, {"root": "blog", "lang": "fr"}))
    assert (french.site.title, french.site.lang) == ("Le Fixture", "fr")
