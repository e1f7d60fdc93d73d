"""`digest report` in Chromium with the network off: the file opens, every chart is drawn and
readable at 375 and 1280 px. Screenshots go to $DIGEST_SCREENSHOTS (else the test's tmp folder).

Skipped, saying why, without selenium, chromium or chromedriver (Debian's; none is downloaded).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.conftest import SmtpServer
from tests.helpers.browser import browser_missing, chromium, set_width
from tests.helpers.report_site import twelve_weeks

pytestmark = pytest.mark.slow

CHARTS = ("subscribers", "runs", "rates", "categories", "digests")
WIDTHS = (375, 1280)


def test_the_report_opens_offline_with_every_chart(tmp_path: Path, smtp_server: SmtpServer) -> None:
    missing = browser_missing()
    if missing:
        pytest.skip(f"no browser to open the report: {missing}")
    site = twelve_weeks(tmp_path / "site", smtp_server)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "report", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    shots = Path(os.environ.get("DIGEST_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with chromium(offline=True) as driver:
        driver.get(out.as_uri())
        # Nothing was fetched: no script, stylesheet, font or image came from anywhere.
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        assert driver.title.startswith("Report · Test Blog")
        for width in WIDTHS:
            set_width(driver, width)
            scroll = driver.execute_script("return document.documentElement.scrollWidth")
            assert scroll <= width, f"the report scrolls sideways at {width} px ({scroll} px)"
            for key in CHARTS:
                # The drawing that fits this width is shown, filling the card, with its legend.
                box = driver.execute_script(
                    "const s = [...document.querySelectorAll(`#${arguments[0]} svg.pygal-chart`)]"
                    ".find(e => e.getBoundingClientRect().width > 0);"
                    "if (!s) return null; const r = s.getBoundingClientRect();"
                    "return [r.width, r.height, s.querySelectorAll('.legend').length,"
                    " s.querySelectorAll('.series').length];",
                    key,
                )
                assert box is not None, f"{key}: no chart shown at {width} px"
                chart_width, chart_height, _legends, series = box
                assert chart_width >= min(width - 60, 800) * 0.9, (key, width, box)
                assert chart_height > 150 and series >= 1, (key, width, box)
            driver.save_screenshot(str(shots / f"report-{width}.png"))
