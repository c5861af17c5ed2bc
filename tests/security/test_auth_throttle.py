"""Brute force meets 429: exponential back-off after five wrong passwords, per address and
overall; the real password works once the back-off is over; short admin passwords are refused.
The throttle's clock is injected, so the test moves time instead of sleeping."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from enrichflow.api.app import create_app
from enrichflow.api.throttle import FREE_FAILURES, GLOBAL_FREE_FAILURES, LoginThrottle
from enrichflow.errors import ConfigError
from security.conftest import PASSWORD, Browser, csrf_of, make_settings


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def attempt(browser: Browser, password: str) -> tuple[int, str | None]:
    page = browser.get("/login")
    answer = browser.post(
        "/login", data={"password": password, "csrf_token": csrf_of(page.text), "next": "/"}
    )
    return answer.status_code, answer.headers.get("retry-after")


def test_brute_force_meets_429_and_the_password_works_after(
    serve_app: Callable[..., Browser],
) -> None:
    """Before: 570 wrong passwords in 10 s were all answered 401. After: 429 from the sixth."""
    browser = serve_app()
    clock = Clock()
    browser.app.state.login_throttle = LoginThrottle(clock)
    for _ in range(FREE_FAILURES):
        assert attempt(browser, "guess") == (401, None)
    assert attempt(browser, "guess") == (429, "1")
    # during a back-off even the right password is not checked
    assert attempt(browser, PASSWORD) == (429, "1")
    clock.now += 1
    assert attempt(browser, "guess") == (401, None)
    assert attempt(browser, "guess") == (429, "2")
    clock.now += 1.5
    assert attempt(browser, "guess") == (429, "1")
    clock.now += 0.5
    assert attempt(browser, "guess") == (401, None)
    status, wait = attempt(browser, PASSWORD)
    assert (status, wait) == (429, "4")
    clock.now += 4
    assert attempt(browser, PASSWORD) == (303, None)
    assert browser.get("/clients").status_code == 200


def test_backoff_doubles_up_to_its_cap_and_overall() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    waits = []
    for _ in range(FREE_FAILURES + 12):
        throttle.failed("198.51.100.7")
        waits.append(throttle.retry_after("198.51.100.7"))
        clock.now += waits[-1]
    assert waits[: FREE_FAILURES - 1] == [0] * (FREE_FAILURES - 1)
    assert waits[FREE_FAILURES - 1 : FREE_FAILURES + 4] == [1, 2, 4, 8, 16]
    assert max(waits) == 15 * 60
    throttle.succeeded("198.51.100.7")

    # an attacker rotating addresses meets the overall back-off
    spread = LoginThrottle(clock)
    for n in range(GLOBAL_FREE_FAILURES):
        spread.failed(f"203.0.113.{n}")
    assert spread.retry_after("192.0.2.1") == 1


def test_short_admin_password_is_refused(engine: object, db_url: str) -> None:
    with pytest.raises(ConfigError, match="at least 12"):
        create_app(engine, make_settings(admin_password="short-pass1"))  # type: ignore[arg-type]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHFLOW_")}
    env.update(ENRICHFLOW_DATABASE_URL=db_url, ENRICHFLOW_ADMIN_PASSWORD="hunter2")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("enrichflow")), "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "ENRICHFLOW_ADMIN_PASSWORD is 7 characters" in done.stderr
