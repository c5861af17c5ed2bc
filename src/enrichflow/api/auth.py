"""Who may use the dashboard and the JSON API.

* **Pages**: the admin logs in at ``/login`` with ``ENRICHFLOW_ADMIN_PASSWORD`` (at least
  :data:`MIN_PASSWORD_LENGTH` characters; the app refuses to start with a shorter one). The
  cookie is signed with the installation key (itsdangerous; HttpOnly, SameSite=Lax, Secure
  over https) and holds ``{"sid": <session id>, "csrf": <token>}``; the session itself lives in
  the database (:mod:`enrichflow.db.dashboard_sessions`), so logout and a password change end it.
  Without an admin password configured nobody can log in and no cookie grants anything.
  Anonymous visitors are redirected to ``/login``. Every POST from a page must carry the
  session's CSRF token in the ``csrf_token`` form field (403 otherwise, before anything is
  read or written). Wrong passwords meet an exponential back-off
  (:mod:`enrichflow.api.throttle`): 429 with ``Retry-After``.
* **API** (``/api/...``): ``Authorization: Bearer <ENRICHFLOW_API_TOKEN>``, or the dashboard
  session cookie plus an ``X-CSRF-Token`` header on anything but GET. Anonymous calls get 401.

Secrets are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from enrichflow.api.hardening import MULTIPART_SLACK
from enrichflow.api.throttle import LoginThrottle
from enrichflow.config import Settings
from enrichflow.db.dashboard_sessions import (
    SESSION_MAX_AGE,
    password_tag,
    session_close,
    session_is_open,
    session_open,
)
from enrichflow.db.engine import now_ms
from enrichflow.errors import ConfigError

__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "ApiAuthRequired",
    "CsrfFailed",
    "LoginRequired",
    "api_guard",
    "check_admin_password",
    "page_guard",
    "router",
    "session_of",
]

SESSION_COOKIE = "enrichflow_session"
MIN_PASSWORD_LENGTH = 12
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SALT = "enrichflow-session"

router = APIRouter()


class LoginRequired(Exception):
    """A page was asked for without a session: the app redirects to ``/login``."""

    def __init__(self, next_path: str = "/") -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ApiAuthRequired(Exception):
    """An API call without a valid token or session: 401."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token: 403."""


class TooLarge(Exception):
    """An upload body above the configured limit (or of unknown length): 413/411."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def admin_password(settings: Settings) -> str | None:
    """The configured admin password; ``None`` (login disabled) when unset or empty."""
    secret = settings.admin_password
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


def check_admin_password(settings: Settings) -> None:
    """:class:`ConfigError` for an admin password too short to survive guessing."""
    password = admin_password(settings)
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            f"ENRICHFLOW_ADMIN_PASSWORD is {len(password)} characters long; the dashboard "
            f"needs at least {MIN_PASSWORD_LENGTH} (a passphrase of four random words will do)"
        )


def _serializer(request: Request) -> URLSafeTimedSerializer:
    key: str = request.app.state.secret_key
    return URLSafeTimedSerializer(key, salt=_SALT)


def session_of(request: Request) -> dict[str, Any]:
    """The verified session cookie's content (``{}`` when absent, forged or expired)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(request).loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def _tag(request: Request, password: str) -> str:
    """The admin password's session tag, computed once per app (scrypt is slow on purpose)."""
    state = request.app.state
    cached: tuple[str, str] | None = getattr(state, "password_tag", None)
    if cached is None or not hmac.compare_digest(cached[0], password):
        cached = (password, password_tag(password, state.secret_key))
        state.password_tag = cached
    return cached[1]


def _check_session(request: Request) -> bool:
    password = admin_password(_settings(request))
    session_id = session_of(request).get("sid")
    if password is None or not isinstance(session_id, str):
        return False
    with request.app.state.engine.connect() as conn:
        return session_is_open(conn, session_id, _tag(request, password), now_ms())


def logged_in(request: Request) -> bool:
    """Whether the request carries an open session (looked up once per request)."""
    known: bool | None = getattr(request.state, "logged_in", None)
    if known is None:
        known = _check_session(request)
        request.state.logged_in = known
    return known


async def _logged_in_async(request: Request) -> bool:
    if getattr(request.state, "logged_in", None) is None:
        request.state.logged_in = await run_in_threadpool(_check_session, request)
    return logged_in(request)


def set_session(request: Request, response: Response, data: dict[str, Any]) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        _serializer(request).dumps(data),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def csrf_token(request: Request) -> str:
    """The session's CSRF token (set at login; the login form's comes from a pre-session)."""
    token = session_of(request).get("csrf")
    return token if isinstance(token, str) else ""


def _check_upload_size(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/"):
        return
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise TooLarge(411, "uploads must declare their Content-Length")
    limit = _settings(request).upload_max_bytes
    if int(declared) > limit + MULTIPART_SLACK:
        raise TooLarge(413, f"the upload is larger than the limit of {limit} bytes")


async def page_guard(request: Request) -> None:
    """Dependency of every dashboard page: logged in, and the CSRF token on every POST."""
    if not await _logged_in_async(request):
        raise LoginRequired(request.url.path)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        _check_upload_size(request)
        form = await request.form()
        given = form.get(CSRF_FIELD)
        if not _same(given if isinstance(given, str) else None, csrf_token(request)):
            raise CsrfFailed()


async def api_guard(request: Request) -> None:
    """Dependency of every ``/api/`` route: the bearer token, or a session (+CSRF header)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        token = _settings(request).api_token
        if token is not None and _same(value.strip(), token.get_secret_value()):
            _check_upload_size(request)
            return
        raise ApiAuthRequired()
    if not await _logged_in_async(request):
        raise ApiAuthRequired()
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _same(
        request.headers.get(CSRF_HEADER), csrf_token(request)
    ):
        raise CsrfFailed()
    _check_upload_size(request)


def _safe_next(value: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/clients"
    return value


def _login_page(request: Request, error: str | None, status: int, token: str) -> HTMLResponse:
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "login.html",
        {
            "error": error,
            "disabled": admin_password(_settings(request)) is None,
            "csrf_token": token,
            "next": _safe_next(request.query_params.get("next")),
            "user": None,
        },
        status_code=status,
    )
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request) -> Response:
    if logged_in(request):
        return RedirectResponse("/clients", status_code=303)
    token = csrf_token(request) or secrets.token_urlsafe(32)
    response = _login_page(request, None, 200, token)
    set_session(request, response, {"csrf": token})
    return response


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(request: Request, wait: int) -> Response:
    token = csrf_token(request) or secrets.token_urlsafe(32)
    response = _login_page(
        request, f"Too many wrong passwords; try again in {wait} seconds.", 429, token
    )
    response.headers["retry-after"] = str(wait)
    set_session(request, response, {"csrf": token})
    return response


def _open_session(request: Request, password: str) -> str:
    with request.app.state.engine.begin() as conn:
        return session_open(conn, _tag(request, password), now_ms())


@router.post("/login", include_in_schema=False)
async def login_submit(request: Request) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = _client_address(request)
    wait = throttle.retry_after(address)
    if wait:
        return _too_many(request, wait)
    form = await request.form()
    token = csrf_token(request)
    given_csrf = form.get(CSRF_FIELD)
    if not _same(given_csrf if isinstance(given_csrf, str) else None, token):
        fresh = secrets.token_urlsafe(32)
        response = _login_page(request, "The form expired; please try again.", 403, fresh)
        set_session(request, response, {"csrf": fresh})
        return response
    expected = admin_password(_settings(request))
    if expected is None:
        return _login_page(
            request,
            "Login is disabled: set ENRICHFLOW_ADMIN_PASSWORD and restart the server.",
            403,
            token,
        )
    password = form.get("password")
    if not _same(password if isinstance(password, str) else None, expected):
        throttle.failed(address)
        return _login_page(request, "Wrong password.", 401, token)
    throttle.succeeded(address)
    session_id = await run_in_threadpool(_open_session, request, expected)
    next_path = form.get("next")
    redirect = RedirectResponse(
        _safe_next(next_path if isinstance(next_path, str) else None), status_code=303
    )
    # a fresh CSRF token with every login (no fixation of the pre-session's token)
    set_session(request, redirect, {"sid": session_id, "csrf": secrets.token_urlsafe(32)})
    return redirect


def _close_session(request: Request) -> None:
    session_id = session_of(request).get("sid")
    if isinstance(session_id, str):
        with request.app.state.engine.begin() as conn:
            session_close(conn, session_id)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """Ends the session server-side: the cookie, even if copied, opens nothing any more."""
    await page_guard(request)
    await run_in_threadpool(_close_session, request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)
