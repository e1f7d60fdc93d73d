"""`digest report`: one self-contained HTML file with every chart, on a database with twelve
weeks of runs made with `send --as-of` (the browser test opens it offline in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.i18n import translations
from tests.conftest import SmtpServer
from tests.helpers.report_site import twelve_weeks
from tests.helpers.site_fixtures import make_site

CHARTS = ("subscribers", "runs", "rates", "categories", "digests")


@pytest.mark.slow  # twelve weekly sends first (about 12 s)
@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_report_is_one_self_contained_file_with_every_chart(
    lang: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    site = twelve_weeks(tmp_path / "site", smtp_server, lang=lang)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "report", "--out", str(out), "--days", "90"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote the report of the last 90 days to {out}\n"
    page = out.read_text(encoding="utf-8")
    # Nothing to fetch: no script, no external stylesheet, image, font or frame.
    assert "<script" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#|data:)""", page)
    assert "@import" not in page and "url(" not in page.replace("url(#", "")
    assert f'<html lang="{lang}"' in page
    for key in CHARTS:
        section = page.split(f'id="{key}"', 1)[1].split("</section>", 1)[0]
        assert section.count('class="pygal-chart"') == 2, key  # narrow and wide
    t = translations(lang).gettext
    assert t("Subscribers over time, by status") in page
    assert t("Bounce and complaint rates per run (%)") in page
    # Twelve runs; the first had one delivery refused (then that address was bounced).
    rates = re.findall(r"<tr><td>(.*?)</td></tr>", _section(page, "rates"))
    assert len(rates) == 12
    assert rates[0].split("</td><td>")[1:] == ["4.35%", "0.00%", "0.10%", "0.30%"]  # 1 of 23
    assert all(row.split("</td><td>")[1] == "0.00%" for row in rates[1:])
    runs = re.findall(r"<tr><td>(.*?)</td></tr>", _section(page, "runs"))
    assert len(runs) == 12 and runs[0].split("</td><td>")[1:3] == ["22", "1"]
    # The list grew over the weeks (joined as their consent record says); today: 37 active,
    # 3 unsubscribed, 2 bounced (one by the import, one by the relay's refusal).
    days = re.findall(r"<tr><td>(.*?)</td></tr>", _section(page, "subscribers"))
    assert days[0].split("</td><td>")[1:] == ["1", "0", "0", "0"]
    assert days[-1].split("</td><td>")[1:] == ["37", "0", "3", "2"]


def _section(page: str, key: str) -> str:
    return page.split(f'id="{key}"', 1)[1].split("</section>", 1)[0]


def test_an_unwritable_out_is_one_clear_line(tmp_path: Path, smtp_server: SmtpServer) -> None:
    site = make_site(tmp_path / "site", f"sqlite:///{tmp_path / 'r.db'}", smtp_server.port)
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "report", "--out", str(tmp_path / "no/r.html")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'no/r.html'}: cannot write:")
    assert "Traceback" not in result.output
