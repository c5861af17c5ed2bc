"""Fixtures of the security suite: the real app served by uvicorn on loopback, and settings
with the dashboard enabled. Every attack is made over HTTP, as a stranger would make it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from enrichflow.api.app import create_app
from enrichflow.config import Settings
from webhooks.webhook_servers import UvicornThread

PASSWORD = "a long enough admin passphrase"
STRONG_KEY = "k" * 8 + "security-suite-signing-key-0123456789"
OLD_DEFAULT_KEY = "change-me-enrichflow-dev-secret"
"""The key the code used to ship with: anyone who read the source knew it."""


def make_settings(**overrides: object) -> Settings:
    """Settings read from nothing but ``overrides`` (no environment key unless given)."""
    values: dict[str, object] = {"admin_password": PASSWORD}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class Browser(httpx.Client):
    """A cookie-keeping HTTP client of the app served on loopback (``.app`` is the app)."""

    def __init__(self, app: FastAPI, url: str) -> None:
        super().__init__(base_url=url, timeout=30, follow_redirects=False)
        self.app = app

    def login(self, password: str = PASSWORD) -> httpx.Response:
        page = self.get("/login")
        return self.post(
            "/login",
            data={"password": password, "csrf_token": csrf_of(page.text), "next": "/clients"},
        )


@contextmanager
def served(app: FastAPI) -> Iterator[Browser]:
    """``app`` on a loopback port for the block, with one browser on it."""
    with UvicornThread(app) as server, Browser(app, server.url) as browser:
        yield browser


@pytest.fixture
def serve_app(engine: Engine) -> Iterator[Callable[..., Browser]]:
    """``serve_app(**settings)``: a fresh app on ``engine`` served on loopback; a browser."""
    with ExitStack() as stack:

        def start(**overrides: object) -> Browser:
            return stack.enter_context(served(create_app(engine, make_settings(**overrides))))

        yield start
