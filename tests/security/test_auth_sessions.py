"""Sessions: no cookie opens anything while login is disabled; a forged or copied cookie is
worth nothing once its session is closed (logout) or its password changed."""

from __future__ import annotations

from collections.abc import Callable

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import Engine, func, select

from enrichflow.db.models import DashboardSession
from security.conftest import OLD_DEFAULT_KEY, PASSWORD, Browser

COOKIE = "enrichflow_session"
SALT = "enrichflow-session"


def signed(key: str, data: dict[str, str]) -> str:
    return URLSafeTimedSerializer(key, salt=SALT).dumps(data)


def refused(browser: Browser) -> bool:
    page = browser.get("/clients")
    api = browser.get("/api/clients")
    return (
        page.status_code == 303
        and page.headers["location"].startswith("/login")
        and (api.status_code == 401)
    )


def test_login_disabled_no_cookie_grants_access(serve_app: Callable[..., Browser]) -> None:
    """Before: a cookie signed with the default key opened every page (200). After: 303/401."""
    browser = serve_app(admin_password=None)
    real_key = browser.app.state.secret_key
    forged = [
        signed(OLD_DEFAULT_KEY, {"u": "admin", "csrf": "x"}),
        signed(real_key, {"u": "admin", "csrf": "x"}),
        signed(real_key, {"u": "admin", "sid": "any", "csrf": "x"}),
    ]
    for cookie in forged:
        browser.cookies.set(COOKIE, cookie)
        assert refused(browser)
    assert browser.login().status_code == 403


def test_signed_cookie_without_an_open_session_is_refused(
    serve_app: Callable[..., Browser],
) -> None:
    """Even with the real key, a cookie names a session that must exist in the database."""
    browser = serve_app()
    key = browser.app.state.secret_key
    for data in ({"u": "admin", "csrf": "x"}, {"sid": "made-up-session-id", "csrf": "x"}):
        browser.cookies.set(COOKIE, signed(key, data))
        assert refused(browser)


def test_logout_ends_the_session_server_side(
    serve_app: Callable[..., Browser], engine: Engine
) -> None:
    """Before: a cookie copied before logout still opened /clients (200). After: 303/401."""
    browser = serve_app()
    assert browser.login().status_code == 303
    stolen = browser.cookies[COOKIE]
    assert browser.get("/clients").status_code == 200
    thief = Browser(browser.app, str(browser.base_url))
    thief.cookies.set(COOKIE, stolen)
    assert thief.get("/clients").status_code == 200
    page = browser.get("/clients").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 303
    assert refused(thief)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DashboardSession)).scalar() == 0
    thief.close()


def test_password_change_ends_every_session(
    serve_app: Callable[..., Browser], engine: Engine
) -> None:
    """Sessions outlive a restart with the same password, and none outlives a new password."""
    first = serve_app()
    second = Browser(first.app, str(first.base_url))
    assert first.login().status_code == 303 and second.login().status_code == 303
    cookies = [first.cookies[COOKIE], second.cookies[COOKIE]]
    second.close()
    restarted = serve_app()
    changed = serve_app(admin_password=PASSWORD + " but changed")
    for cookie in cookies:
        restarted.cookies.set(COOKIE, cookie)
        assert restarted.get("/clients").status_code == 200
        changed.cookies.set(COOKIE, cookie)
        assert refused(changed)
    assert changed.login(PASSWORD + " but changed").status_code == 303
    assert changed.get("/clients").status_code == 200
