"""Who may use the dashboard and the API: every route refuses an anonymous user, the CSRF
token guards every page form (403 with nothing written), the API token works, wrong
passwords are refused, and without an admin password nobody can log in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from starlette.routing import Mount

from enrichflow.api.app import PUBLIC_PATHS, create_app
from enrichflow.config import Settings
from enrichflow.db.models import Client
from webhooks.webhook_servers import UvicornThread

PASSWORD = "correct horse battery staple"
TOKEN = "api-token-for-tests-0123456789"


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": "dashboard-test-secret-at-least-32-bytes",
        "admin_password": PASSWORD,
        "api_token": TOKEN,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: TestClient, password: str = PASSWORD) -> str:
    """Log in; the session's CSRF token."""
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"password": password, "csrf_token": csrf_of(page.text), "next": "/clients"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/clients").text)


class TestClient(httpx.Client):
    """An HTTP client for the app served by uvicorn on loopback (``.app`` is the app)."""

    __test__ = False

    def __init__(self, app: FastAPI, url: str) -> None:
        super().__init__(base_url=url, timeout=30)
        self.app = app


@contextmanager
def serve(app: FastAPI) -> Iterator[TestClient]:
    with UvicornThread(app) as server, TestClient(app, server.url) as client:
        yield client


@pytest.fixture
def app_client(engine: Engine) -> Iterator[TestClient]:
    with serve(create_app(engine, make_settings())) as client:
        yield client


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def flat_routes(app: FastAPI) -> list[Any]:
    """Every route of the app's route table. Recent FastAPI keeps included routers as one
    entry each, expanded by ``effective_route_contexts()``; older ones list routes directly."""
    out: list[Any] = []
    for route in app.routes:
        expand = getattr(route, "effective_route_contexts", None)
        out.extend(expand() if expand is not None else [route])
    return out


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for route in flat_routes(app):
        if isinstance(route, Mount):
            continue
        path = route.path
        if any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS):
            continue
        methods = getattr(route, "methods", None) or {"GET"}
        out.extend((m, path) for m in sorted(methods) if m != "HEAD")
    return out


def test_every_route_refuses_anonymous(app_client: TestClient) -> None:
    routes = _routes(app_client.app)
    assert len(routes) >= 30, routes
    assert ("GET", "/openapi.json") in routes
    for method, path in routes:
        url = _concrete(path).replace("{fmt}", "csv")
        answer = app_client.request(method, url, follow_redirects=False)
        if path.startswith("/api/") or path == "/openapi.json":
            assert answer.status_code == 401, (method, path, answer.status_code)
        else:
            assert answer.status_code == 303, (method, path, answer.status_code)
            assert answer.headers["location"].startswith("/login"), (method, path)


def test_public_routes_stay_public(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"ok": True}
    assert app_client.get("/login").status_code == 200
    assert app_client.get("/static/app.css").status_code == 200
    # a callback is authenticated by its signed token, not by a login
    assert app_client.post("/callbacks/forged", content=b"{}").status_code == 401


def test_login_wrong_password_and_logout(app_client: TestClient) -> None:
    page = app_client.get("/login")
    wrong = app_client.post("/login", data={"password": "nope", "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 401 and "Wrong password" in wrong.text
    assert app_client.get("/clients", follow_redirects=False).status_code == 303
    token = login(app_client)
    assert app_client.get("/clients").status_code == 200
    out = app_client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert app_client.get("/clients", follow_redirects=False).status_code == 303


def test_login_needs_its_csrf_token(app_client: TestClient) -> None:
    app_client.get("/login")
    answer = app_client.post("/login", data={"password": PASSWORD})
    assert answer.status_code == 403
    assert app_client.get("/clients", follow_redirects=False).status_code == 303


def test_forged_session_cookie_is_refused(app_client: TestClient) -> None:
    app_client.cookies.set("enrichflow_session", '{"u": "admin"}')
    assert app_client.get("/clients", follow_redirects=False).status_code == 303
    assert app_client.get("/api/clients").status_code == 401


def test_no_admin_password_means_no_login(engine: Engine) -> None:
    settings = make_settings(admin_password=None)
    with serve(create_app(engine, settings)) as client:
        page = client.get("/login")
        assert "ENRICHFLOW_ADMIN_PASSWORD" in page.text
        for guess in ("", "admin", "change-me"):
            answer = client.post(
                "/login", data={"password": guess, "csrf_token": csrf_of(page.text)}
            )
            assert answer.status_code == 403
        assert client.get("/clients", follow_redirects=False).status_code == 303


def _client_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Client)).scalar_one())


def test_csrf_missing_or_wrong_is_403_and_writes_nothing(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client)
    before = _client_count(engine)
    for data in ({"name": "acme"}, {"name": "acme", "csrf_token": "wrong"}):
        answer = app_client.post("/clients", data=data, follow_redirects=False)
        assert answer.status_code == 403
    assert _client_count(engine) == before
    # every page POST route refuses a missing token
    for method, path in _routes(app_client.app):
        if method == "POST" and not path.startswith("/api/"):
            answer = app_client.post(_concrete(path), data={}, follow_redirects=False)
            assert answer.status_code == 403, path
    assert _client_count(engine) == before
    ok = app_client.post(
        "/clients", data={"name": "acme", "csrf_token": token}, follow_redirects=True
    )
    assert ok.status_code == 200 and "acme" in ok.text
    assert _client_count(engine) == before + 1


def test_api_token(app_client: TestClient) -> None:
    good = {"authorization": f"Bearer {TOKEN}"}
    assert app_client.get("/api/clients", headers=good).status_code == 200
    assert app_client.get("/openapi.json", headers=good).json()["paths"]
    bad = {"authorization": "Bearer not-the-token"}
    assert app_client.get("/api/clients", headers=bad).status_code == 401
    assert app_client.post("/api/clients", json={"name": "x"}, headers=bad).status_code == 401


def test_api_with_session_needs_csrf_header(app_client: TestClient) -> None:
    token = login(app_client)
    assert app_client.get("/api/clients").status_code == 200
    assert app_client.post("/api/clients", json={"name": "a"}).status_code == 403
    made = app_client.post("/api/clients", json={"name": "a"}, headers={"x-csrf-token": token})
    assert made.status_code == 201


def test_api_token_unset_refuses_every_bearer(engine: Engine) -> None:
    with serve(create_app(engine, make_settings(api_token=None))) as client:
        answer = client.get("/api/clients", headers={"authorization": "Bearer x"})
        assert answer.status_code == 401
        answer = client.get("/api/clients", headers={"authorization": "Bearer None"})
        assert answer.status_code == 401


def test_upload_size_limit(app_client: TestClient, engine: Engine) -> None:
    app = app_client.app
    app.state.settings = make_settings(upload_max_bytes=2048)  # type: ignore[attr-defined]
    token = login(app_client)
    client_id = app_client.post(
        "/api/clients", json={"name": "big"}, headers={"x-csrf-token": token}
    ).json()["id"]
    body = b"Company,Website\n" + b"Acme,acme.com\n" * 10_000
    answer = app_client.post(
        f"/clients/{client_id}/uploads",
        data={"csrf_token": token},
        files={"file": ("big.csv", body, "text/csv")},
    )
    assert answer.status_code == 413
    small = b"Company,Website\n" + b"Acme,acme.com\n" * 10
    answer = app_client.post(
        f"/clients/{client_id}/uploads",
        data={"csrf_token": token},
        files={"file": ("small.csv", small, "text/csv")},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/uploads/")


def test_route_table_is_complete(app_client: TestClient) -> None:
    paths = {path for _, path in _routes(app_client.app)}
    for expected in (
        "/clients",
        "/workflows",
        "/batches/{batch_id}",
        "/api/batches",
        "/api/uploads",
    ):
        assert expected in paths
