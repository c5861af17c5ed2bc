"""Security headers on every answer (pages, API, callbacks, static files, errors), templates
with nothing inline for the policy to block, and bodies bounded before anyone reads them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import enrichflow.api.app as app_module
from security.conftest import STRONG_KEY, Browser

TEMPLATES = Path(app_module.__file__).parent / "dashboard" / "templates"


def assert_hardened(answer: httpx.Response) -> None:
    where = f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}"
    policy = answer.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], where
    assert directives.get("style-src") == ["'self'"], where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert "unsafe-inline" not in policy, where
    assert answer.headers.get("x-content-type-options") == "nosniff", where
    assert answer.headers.get("referrer-policy") == "no-referrer", where


@pytest.fixture
def browser(serve_app: Callable[..., Browser]) -> Browser:
    return serve_app(secret_key=STRONG_KEY)


def test_every_kind_of_answer_carries_the_headers(browser: Browser) -> None:
    """Before: no Content-Security-Policy, X-Content-Type-Options or Referrer-Policy at all."""
    anonymous = [
        browser.get("/login"),
        browser.get("/clients"),
        browser.get("/api/clients"),
        browser.get("/healthz"),
        browser.get("/static/app.css"),
        browser.get("/static/missing.js"),
        browser.post("/callbacks/forged", content=b"{}"),
    ]
    assert [a.status_code for a in anonymous] == [200, 303, 401, 200, 200, 404, 401]
    assert browser.login().status_code == 303
    logged_in = [
        browser.get("/clients"),
        browser.get("/batches"),
        browser.get("/workflows"),
        browser.get("/api/clients"),
        browser.get("/clients/999999"),
        browser.get("/openapi.json"),
    ]
    assert [a.status_code for a in logged_in] == [200, 200, 200, 200, 404, 200]
    for answer in anonymous + logged_in:
        assert_hardened(answer)


def template_texts() -> Iterator[tuple[str, str]]:
    for path in sorted(TEMPLATES.glob("*.html")):
        yield path.name, path.read_text()


def test_templates_have_no_inline_script_or_style() -> None:
    names = []
    for name, text in template_texts():
        names.append(name)
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            assert "src=" in tag, (name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text, flags=re.I), name
        assert not re.search(r"\sstyle\s*=", text, flags=re.I), name
        assert "<style" not in text.lower(), name
        assert "javascript:" not in text.lower(), name
    assert "batch.html" in names and "base.html" in names


def test_unbounded_or_oversized_bodies_are_refused_unread(browser: Browser) -> None:
    """Before: an anonymous POST /login or /api/... body was read into memory whatever its
    size, before the login check. After: 413 for a declared size above 1 MiB, 411 for a body
    of unknown length; both before a byte of it is read."""
    big = browser.post(
        "/login",
        content=b"password=" + b"x" * (2 * 1024 * 1024),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
    assert_hardened(big)

    def chunks() -> Iterator[bytes]:
        yield b'{"name": '
        yield b'"x"}'

    chunked = browser.post(
        "/api/clients", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 411
    assert_hardened(chunked)
