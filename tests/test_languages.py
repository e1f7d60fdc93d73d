"""site.lang: the gettext catalog (shipped complete and compiled), <html lang/dir>, dates."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from digest.errors import ConfigError
from digest.i18n import LOCALE_DIR, format_date, text_direction
from digest.render.confirmation import confirmation_message
from digest.render.renderer import Renderer
from digest.settings import Settings
from tests.helpers.posts import AS_OF, make_post, write_config

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/digest.po"))


def test_german_is_shipped() -> None:
    assert "de" in SHIPPED


@pytest.mark.parametrize("lang", SHIPPED)
def test_each_catalog_is_complete_and_compiled(lang: str) -> None:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "digest.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=lang, domain="digest")
    with (LOCALE_DIR / "digest.pot").open("rb") as handle:
        template = read_po(handle)
    assert {m.id for m in catalog if m.id} == {m.id for m in template if m.id}, "pybabel update"
    untranslated = [m.id for m in catalog if m.id and not all(m.string or [""])]
    assert untranslated == [], f"{po}: untranslated messages"
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    mo = po.with_suffix(".mo")
    assert mo.read_bytes() == compiled.getvalue(), f"{mo} is stale: pybabel compile"


def test_the_template_catalog_holds_every_string_in_the_sources(tmp_path: Path) -> None:
    out = tmp_path / "digest.pot"
    extract = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg"]
    options = ["--no-location", "--sort-output", "--omit-header", "-o", str(out)]
    subprocess.run(
        [*extract, *options, "."],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with out.open("rb") as fresh, (LOCALE_DIR / "digest.pot").open("rb") as shipped:
        assert {m.id for m in read_po(fresh)} == {m.id for m in read_po(shipped)}


def test_dates_in_the_language() -> None:
    when = datetime(2025, 3, 4, 9, 0)
    assert format_date(when, "en") == "4 March 2025"
    assert format_date(when, "de") == "4. März 2025"
    assert format_date(when, "fr") == "4 mars 2025"
    assert format_date(when, "de", fmt="d. MMM") == "4. März"
    assert format_date(when, "de", fmt="%H:%M") == "09:00"


def test_right_to_left_languages_get_dir_rtl(tmp_path: Path) -> None:
    assert text_direction("ar") == text_direction("he") == "rtl"
    assert text_direction("de") == text_direction("pt-BR") == "ltr"
    settings = write_config(tmp_path, site_extra="  lang: ar\n")
    segment = Renderer(settings).render_segment(
        settings.digest("weekly"), [make_post(1)], as_of=AS_OF
    )
    assert '<html lang="ar" dir="rtl"' in segment.html
    assert "&larr;" in segment.html or "←" in segment.html


def test_a_language_tag_is_checked_and_an_unknown_language_speaks_english(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"site\.lang: 'not a tag' is not a language tag"):
        write_config(tmp_path, site_extra="  lang: not a tag\n")
    settings = write_config(tmp_path, site_extra="  lang: tlh\n")
    segment = Renderer(settings).render_segment(
        settings.digest("weekly"), [make_post(1)], as_of=AS_OF
    )
    assert '<html lang="tlh" dir="ltr"' in segment.html and "Read more" in segment.html
    assert format_date(datetime(2025, 3, 4), "tlh") == "4 March 2025"


def test_a_subject_written_in_the_config_is_kept(tmp_path: Path) -> None:
    settings: Settings = write_config(tmp_path, site_extra="  lang: de\n")
    renderer = Renderer(settings)
    movies = renderer.render_segment(
        settings.digest("movies"), [make_post(1, categories=("Movies",))], as_of=AS_OF
    )
    assert movies.subject == "Example Blog movies: Post number 1"
    weekly = renderer.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
    assert weekly.subject == "Example Blog: 1 neuer Beitrag"


def test_the_confirmation_email_speaks_german(tmp_path: Path) -> None:
    settings = write_config(tmp_path, site_extra="  lang: de\n")
    msg = confirmation_message(
        settings, to_email="jo@example.org", to_name="Jo", link="https://x.example/confirm/t"
    )
    assert msg["Subject"] == "Bestätigen Sie Ihr Abonnement von Example Blog"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "Hallo Jo," in text.get_content() and "gilt 7 Tage" in text.get_content()
    assert '<html lang="de" dir="ltr">' in html.get_content()
