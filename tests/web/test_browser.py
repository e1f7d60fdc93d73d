"""The subscriber's journey in a real browser: Selenium driving Debian's chromium and chromedriver
against a real `digest serve`, a real aiosmtpd server and a real SQLite file.

Skipped, saying why, when selenium, chromium or chromedriver is missing (`.ci/run` installs
them; no browser is ever downloaded). Screenshots at 375 and 1280 px go to $DIGEST_SCREENSHOTS
(else the test's tmp folder), to be looked at. The journey runs in English and in German
(site.lang: de), its expected words taken from the catalog.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from digest.delivery.run import send_digest
from digest.i18n import translations
from digest.store.subscribers import find_subscriber
from tests.conftest import SmtpServer, free_port
from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, browser_missing
from tests.helpers.site_fixtures import AS_OF, Site, make_site

pytestmark = pytest.mark.slow

WIDTHS = (375, 1280)


@dataclass
class Served:
    site: Site
    base: str
    shots: Path
    lang: str

    def t(self, message: str, **values: object) -> str:
        """The message as the pages and mails of this site say it."""
        return translations(self.lang).gettext(message) % values


@pytest.fixture(params=["en", "de"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, smtp_server: SmtpServer
) -> Iterator[Served]:
    lang = str(request.param)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    site = make_site(
        tmp_path / "site",
        f"sqlite:///{tmp_path / 'browser.db'}",
        smtp_server.port,
        digests={
            "weekly": {"categories": [], "lookback_days": 7, "min_posts": 1},
            "daily": {"categories": [], "lookback_days": 7, "min_posts": 1},
        },
        extra={"site": {"lang": lang}, "web": {"base_url": base, "archive": True}},
    )
    site.add_post("Borrow Checker", categories=["Rust"], days_ago=1)
    site.add_post("Goroutines", categories=["Go"], days_ago=2)
    site.add_post("Deep Nets", categories=["Machine Learning"], days_ago=3)
    site.add_post("Pixel Art", categories=["Retro"], days_ago=4)
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "digest", "--config", str(site.config_path), "serve"]
    with log.open("wb") as stderr:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=site.root,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"digest serve did not start: {log.read_text()}")
                time.sleep(0.1)
        shots = Path(os.environ.get("DIGEST_SCREENSHOTS") or tmp_path / "screenshots") / lang
        shots.mkdir(parents=True, exist_ok=True)
        yield Served(site, base, shots, lang)
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    assert "Traceback" not in log.read_text()


@pytest.fixture
def browser() -> Iterator[Any]:
    missing = browser_missing()
    if missing:
        pytest.skip(f"no browser for the journey: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver: Any, folder: Path, name: str) -> None:
    """The whole page at each of WIDTHS, as folder/name-<width>.png."""
    for width in WIDTHS:
        metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        metrics["height"] = max(int(height), 400)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width, f"{name} scrolls sideways at {width} px ({scroll} px wide)"
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def heading(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "h1").text)


def submit(driver: Any, form_css: str = "form") -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    button = driver.find_element(By.CSS_SELECTOR, f"{form_css} button[type=submit]")
    button.click()

    def left_the_page(_driver: Any) -> bool:
        # The old page is gone once its button is. Chromedriver says so either as a stale
        # element or, mid-navigation, as "Node with given id does not belong to the document".
        try:
            button.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 10).until(left_the_page)


def tick(driver: Any, name: str, value: str, on: bool) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]')
    if box.is_selected() != on:
        box.find_element(By.XPATH, "..").click()  # the label, as a person clicks it
    assert box.is_selected() == on


def wait_for_mail(smtp_server: SmtpServer, address: str, count: int) -> Any:
    deadline = time.monotonic() + 20
    while len(smtp_server.handler.to(address)) < count:
        assert time.monotonic() < deadline, f"no mail number {count} to {address}"
        time.sleep(0.1)
    return smtp_server.handler.to(address)[count - 1].message


def link_in(message: Any, pattern: str) -> str:
    text = message.get_body(("plain",))
    match = re.search(pattern, str(text.get_content()))
    assert match is not None, text.get_content()
    return match.group(1)


def test_sign_up_confirm_and_manage_the_subscription_in_a_browser(
    served: Served, browser: Any, smtp_server: SmtpServer
) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    site, driver, shots, t = served.site, browser, served.shots, served.t
    email = "reader@example.com"
    title = "Test Blog"
    weekly, daily = t("%(name)s digest", name="Weekly"), t("%(name)s digest", name="Daily")

    driver.get(served.base + "/subscribe")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == served.lang
    assert heading(driver) == t("Subscribe to %(title)s", title=title)
    shoot(driver, shots, "1-subscribe")
    # The page's one script filled the hidden field with the browser's zone (the CSP allowed it).
    zone = driver.find_element(By.ID, "timezone").get_attribute("value")
    assert zone
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "name").send_keys("Rea")
    tick(driver, "categories", "Rust", True)
    tick(driver, "categories", "Machine Learning", True)
    submit(driver)
    assert heading(driver) == t("Check your inbox")
    shoot(driver, shots, "2-check-inbox")

    confirm = link_in(wait_for_mail(smtp_server, email, 1), r"(http://\S+/confirm/\S+)")
    driver.get(confirm)
    assert heading(driver) == t("Confirm your subscription to %(title)s", title=title)
    submit(driver)
    assert heading(driver) == t("Subscription confirmed")
    shoot(driver, shots, "3-confirmed")
    store = site.store()
    try:
        row = find_subscriber(store, email)
        assert row is not None
        assert (row.status, row.categories) == ("active", ("Machine Learning", "Rust"))
        assert row.timezone == zone

        send_digest(site.settings(), store, "weekly", as_of=AS_OF)
        digest_mail = wait_for_mail(smtp_server, email, 2)
        manage = link_in(digest_mail, re.escape(t("Manage your subscription")) + r": (\S+)")

        # The archive (web.archive: true): the email's "View in browser" page, listed in /archive.
        view = link_in(digest_mail, re.escape(t("View in browser")) + r": (\S+)")
        driver.get(served.base + "/archive")
        assert heading(driver) == t("Archive")
        shoot(driver, shots, "4-archive")
        driver.find_element(By.CSS_SELECTOR, f'a[href="{view}"]').click()
        WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.current_url == view
        )
        page = driver.find_element(By.TAG_NAME, "body").text
        assert "Borrow Checker" in page and "Goroutines" in page  # every post, not Rea's share
        assert email not in driver.page_source and "/unsubscribe/" not in driver.page_source
        shoot(driver, shots, "5-archived-email")

        driver.get(manage)
        assert heading(driver) == t("Manage your subscription")
        shoot(driver, shots, "6-preferences")

        tick(driver, "categories", "Rust", False)
        tick(driver, "categories", "Go", True)
        submit(driver, "form:not(.leave)")
        notice = driver.find_element(By.CSS_SELECTOR, ".notice").text
        assert notice == t("Saved. Your next digest follows these choices.")
        row = find_subscriber(store, email)
        assert row is not None and row.categories == ("Go", "Machine Learning")

        driver.find_element(By.CSS_SELECTOR, 'input[name="pause"][value="2"]').click()
        submit(driver, "form:not(.leave)")
        paused = t("Paused until %(date)s.", date="").rstrip(" .")
        assert paused in driver.find_element(By.TAG_NAME, "main").text
        row = find_subscriber(store, email)
        assert row is not None and row.paused_until is not None

        # Leaving one digest: the weekly email's unsubscribe link keeps daily, and says so.
        driver.get(link_in(digest_mail, re.escape(t("Unsubscribe")) + r": (\S+)"))
        assert heading(driver) == t("Unsubscribe from “%(digest)s”?", digest=weekly)
        shoot(driver, shots, "7-unsubscribe")
        submit(driver)
        assert heading(driver) == t("You left “%(digest)s”", digest=weekly)
        still = t("You still get: %(digests)s.", digests=daily)
        assert still in driver.find_element(By.TAG_NAME, "main").text
        shoot(driver, shots, "8-left-weekly")
        row = find_subscriber(store, email)
        assert row is not None and row.status == "active"
        assert (row.all_digests, row.digests) == (False, ("daily",))

        # Back on the preferences page: weekly is unticked; tick it again, untick daily.
        driver.get(manage)
        box = driver.find_element(By.CSS_SELECTOR, 'input[name="digests"][value="weekly"]')
        assert not box.is_selected()
        tick(driver, "digests", "weekly", True)
        tick(driver, "digests", "daily", False)
        submit(driver, "form:not(.leave)")
        shoot(driver, shots, "9-saved")
        row = find_subscriber(store, email)
        assert row is not None and (row.all_digests, row.digests) == (False, ("weekly",))

        submit(driver, "form.leave")
        assert heading(driver) == t("You are unsubscribed")
        shoot(driver, shots, "10-unsubscribed")
        row = find_subscriber(store, email)
        assert row is not None and row.status == "unsubscribed"

        driver.get(served.base + "/no/such/page")
        assert heading(driver) == t("Not found")
        shoot(driver, shots, "11-not-found")
    finally:
        store.dispose()
    for name in ("1-subscribe", "6-preferences", "4-archive", "5-archived-email"):
        for width in WIDTHS:
            assert (shots / f"{name}-{width}.png").stat().st_size > 5_000
