"""Who may use the dashboard and the JSON API.

* **Pages**: the admin logs in at ``/login`` with ``ENRICHFLOW_ADMIN_PASSWORD``. The session
  is a cookie signed with ``secret_key`` (itsdangerous; HttpOnly, SameSite=Lax, Secure over
  https) holding ``{"u": "admin", "csrf": <token>}``; it expires after :data:`SESSION_MAX_AGE`.
  Anonymous visitors are redirected to ``/login``. Every POST from a page must carry the
  session's CSRF token in the ``csrf_token`` form field (403 otherwise, before anything is
  read or written). Without an admin password configured nobody can log in.
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

from enrichflow.config import Settings

__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "ApiAuthRequired",
    "CsrfFailed",
    "LoginRequired",
    "api_guard",
    "page_guard",
    "router",
    "session_of",
]

SESSION_COOKIE = "enrichflow_session"
SESSION_MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
ADMIN = "admin"
_SALT = "enrichflow-session"
# multipart bodies may be this much larger than the file they carry (boundaries, fields)
MULTIPART_SLACK = 64 * 1024

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


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt=_SALT)


def session_of(request: Request) -> dict[str, Any]:
    """The verified session cookie's content (``{}`` when absent, forged or expired)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(_settings(request)).loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def logged_in(request: Request) -> bool:
    return session_of(request).get("u") == ADMIN


def set_session(request: Request, response: Response, data: dict[str, Any]) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        _serializer(_settings(request)).dumps(data),
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
    if not logged_in(request):
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
    if not logged_in(request):
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


@router.post("/login", include_in_schema=False)
async def login_submit(request: Request) -> Response:
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
        return _login_page(request, "Wrong password.", 401, token)
    next_path = form.get("next")
    redirect = RedirectResponse(
        _safe_next(next_path if isinstance(next_path, str) else None), status_code=303
    )
    # a fresh CSRF token with every login (no fixation of the pre-session's token)
    set_session(request, redirect, {"u": ADMIN, "csrf": secrets.token_urlsafe(32)})
    return redirect


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    await page_guard(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)
