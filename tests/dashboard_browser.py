"""What the dashboard's browser tests share: a headless Chromium (Debian's ``chromium`` and
``chromium-driver`` through Selenium, nothing downloaded) at a desktop or a phone size, the app
served as ``enrichflow serve`` serves it, and the checks every page must pass (fits a 390 px
screen, no serious or critical axe-core finding).

Without the browser a test is skipped loudly, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from enrichflow.api.app import create_app
from enrichflow.catalog.workflow_options import workflow_options_update
from enrichflow.conductor.loop import Conductor
from enrichflow.conductor.thread import ConductorThread
from enrichflow.config import Settings
from enrichflow.db.engine import make_engine
from enrichflow.executors.local import LocalExecutor
from enrichflow.services import build_services
from enrichflow.webhooks.ratelimit import reset_limits
from enrichflow.webhooks.sandbox import create_sandbox_app
from handlers_for_tests import IN_CI
from webhooks.webhook_servers import UvicornThread, free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "e2e-admin-password"
DESKTOP = (1440, 900)
PHONE = (390, 844)
BLOCKING_IMPACTS = ("serious", "critical")


def require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    problem = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    if not missing:
        try:
            import axe_selenium_python  # noqa: F401
            import selenium  # noqa: F401
        except ImportError as exc:
            problem = f"{exc.name} is not installed (pip install -e '.[test]')"
        else:
            return
    if IN_CI:
        pytest.fail(f"the dashboard browser test cannot run: {problem}; CI=true requires it")
    pytest.skip(f"!!! SKIPPING THE DASHBOARD BROWSER TEST: {problem}")


@contextmanager
def chromium(profile: Path, size: tuple[int, int]) -> Iterator[Any]:
    """A headless Chromium whose viewport is ``size``; a phone size is emulated as a phone
    (touch, the page's viewport meta honoured), as a 390 px screen renders it."""
    require_browser()
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={max(size[0], 800)},{size[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 800},
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Chromium at a desktop size."""
    with chromium(tmp_path / "chromium-desktop", DESKTOP) as driver:
        yield driver


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Any]:
    """Chromium at a phone's size."""
    with chromium(tmp_path / "chromium-phone", PHONE) as driver:
        yield driver


class Served:
    """The app and the conductor, as ``enrichflow serve`` runs them, plus the Clay sandbox."""

    def __init__(self, engine: Engine, url: str, sandbox_url: str, settings: Settings) -> None:
        self.engine, self.url, self.sandbox_url = engine, url, sandbox_url
        self.settings = settings


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[Served]:
    reset_limits()
    path = tmp_path / "e2e.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    # These flows group one Clay table's failures; de-duplication would file the failed
    # leaders' followers as a second class of failure, and the circuit breaker would pause
    # the step after its first 20 failures (the controls' own test turns it on again).
    with engine.begin() as conn:
        workflow_options_update(
            conn,
            "enrich_company_via_waterfall_in_clay",
            "apollo_scrape",
            {"dedupe_by": "off", "breaker_failures": 0, "breaker_window_seconds": 0},
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The dashboard's launch runs the preflight with the app's settings, as `serve` does;
    # ASYNC steps need the public URL set there.
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        secret_key="e2e-secret-of-at-least-32-bytes-long",
        admin_password=PASSWORD,
        poll_interval=0.1,
        public_url=url,
    )
    app = create_app(engine, settings)
    server = UvicornThread(app, port)
    executor = LocalExecutor(engine, 4, build_services(engine, settings, server.url))
    app.state.wake = executor.wake
    background = ConductorThread(Conductor(engine, executor, 50, 0.1))
    with UvicornThread(create_sandbox_app(delay_seconds=0.05)) as sandbox, server:
        background.start()
        try:
            yield Served(engine, server.url, sandbox.url, settings)
        finally:
            background.stop()
            executor.close()
            engine.dispose()
            reset_limits()
    assert background.error is None


def is_stale(element: Any) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.tag_name  # noqa: B018 - touching it tells whether the page is still there
    except StaleElementReferenceException:
        return True
    return False


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except WebDriverException:
            pass  # the page reloaded under us
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


class Page:
    """Short-hands over one driver: find, read, click-and-wait, screenshot, the page checks."""

    def __init__(self, driver: Any, base: str, prefix: str) -> None:
        self.d, self.base, self.prefix = driver, base, prefix
        ARTIFACTS.mkdir(exist_ok=True)

    def get(self, path: str) -> None:
        self.d.get(f"{self.base}{path}")

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.d.find_elements(By.CSS_SELECTOR, selector))

    def text(self, selector: str) -> str:
        return str(self.css(selector).text)

    def submit(self, element: Any) -> None:
        """Click a submit button or link and wait until the next page replaced this one, so
        no later look-up can find an element of the page that is going away."""
        from selenium.webdriver.common.by import By

        page = self.d.find_element(By.TAG_NAME, "html")
        element.click()
        wait_for(lambda: is_stale(page), 20, "the next page after a click")

    def select(self, selector: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.css(selector)).select_by_value(value)

    def shot(self, name: str) -> None:
        self.d.save_screenshot(str(ARTIFACTS / f"{self.prefix}_{name}.png"))

    def login(self) -> None:
        self.get("/login")
        self.css("#password").send_keys(PASSWORD)
        self.submit(self.css("#login"))

    def check(self, name: str) -> None:
        """The page fits the viewport (no sideways scrolling of the whole page), has no
        serious or critical accessibility finding, and is saved as a screenshot."""
        self.shot(name)
        widths = self.d.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1], (
            f"{name} ({self.d.current_url}) is {widths[0]} px wide in a {widths[1]} px viewport: "
            f"{self.overflowing()}"
        )
        findings = axe_findings(self.d)
        assert not findings, f"{name} ({self.d.current_url}): {findings}"

    def overflowing(self) -> list[str]:
        """The elements that reach past the right edge, for the failure message."""
        return list(
            self.d.execute_script(
                "const w = window.innerWidth; return Array.from(document.querySelectorAll("
                "'body *')).filter(e => e.getBoundingClientRect().right > w + 0.5)"
                ".slice(0, 8).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + "
                "e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
            )
        )


def axe_findings(driver: Any) -> list[str]:
    """axe-core's serious and critical violations on the current page, one line each (the
    script ships inside the ``axe-selenium-python`` package: nothing is fetched)."""
    from axe_selenium_python import Axe

    axe = Axe(driver)
    axe.inject()
    result = axe.run()
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]
