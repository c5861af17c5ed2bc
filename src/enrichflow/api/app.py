"""The app factory. Each feature is a router; the app only wires them to shared state.

``app.state`` holds what routes need: ``engine``, ``settings``, ``secret_key`` (resolved once
by :func:`enrichflow.secret_key.resolve_secret_key`), ``login_throttle`` (:class:`~enrichflow.api.throttle.LoginThrottle`), ``wake`` (called after a
callback completed a state or a batch was launched or retried, so the conductor runs at once
instead of at its next poll) and ``templates`` (the dashboard's Jinja2 environment).

Every response carries the security headers of :mod:`enrichflow.api.hardening`.

Public: ``/callbacks/{token}`` (authenticated by its signed token), ``/healthz``, ``/login``
and ``/static/*``. Everything else needs the dashboard session or, under ``/api/``, the API
token (see :mod:`enrichflow.api.auth`); ``/openapi.json`` too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

import enrichflow
from enrichflow.api import auth
from enrichflow.api.callbacks import router as callbacks_router
from enrichflow.api.dashboard.formatting import FILTERS
from enrichflow.api.dashboard.routes import router as dashboard_router
from enrichflow.api.hardening import Hardening
from enrichflow.api.rest import router as rest_router
from enrichflow.api.throttle import LoginThrottle
from enrichflow.config import Settings
from enrichflow.error_reporting import init_error_reporting
from enrichflow.errors import ConfigError, ConflictError, InputError, NotFoundError
from enrichflow.secret_key import resolve_secret_key

__all__ = ["PUBLIC_PATHS", "create_app"]

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
PUBLIC_PATHS = ("/callbacks/{token}", "/healthz", "/login", "/static")

health_router = APIRouter()
openapi_router = APIRouter(dependencies=[Depends(auth.api_guard)])


@health_router.get("/healthz")
def healthz() -> dict[str, bool]:
    """Liveness: the process answers (the database is not touched)."""
    return {"ok": True}


@openapi_router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    """The OpenAPI schema of the JSON API (login or API token required)."""
    return JSONResponse(request.app.openapi())


def _no_wake() -> None:
    return None


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_html(request):
        templates: Jinja2Templates = request.app.state.templates
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "message": message, "user": auth.logged_in(request)},
            status_code=status,
        )
    return JSONResponse({"detail": message}, status_code=status)


def _install_handlers(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.LoginRequired)
        return auth.login_redirect(exc)

    async def api_auth(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"detail": "authentication required"},
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )

    async def csrf(request: Request, exc: Exception) -> Response:
        return _error(request, 403, "The form's CSRF token is missing or wrong; reload the page.")

    async def too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.TooLarge)
        return _error(request, exc.status, exc.message)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(request, 404, str(exc))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error(request, 422, str(exc))

    async def conflict(request: Request, exc: Exception) -> Response:
        return _error(request, 409, str(exc))

    async def invalid_request(request: Request, exc: Exception) -> Response:
        # Pydantic echoes each rejected value, and a rejected value may be a webhook URL or
        # a token: the answer names where and what is wrong, without the value.
        assert isinstance(exc, RequestValidationError)
        errors = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(auth.LoginRequired, login_required)
    app.add_exception_handler(auth.ApiAuthRequired, api_auth)
    app.add_exception_handler(auth.CsrfFailed, csrf)
    app.add_exception_handler(auth.TooLarge, too_large)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ConfigError, bad_request)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(InputError, bad_request)
    app.add_exception_handler(ConflictError, conflict)


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(DASHBOARD_DIR / "templates"))
    env: Any = templates.env
    env.autoescape = True
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters.update(FILTERS)
    return templates


def create_app(
    engine: Engine, settings: Settings, wake: Callable[[], None] | None = None
) -> FastAPI:
    """The enrichflow HTTP app over ``engine``: callbacks, dashboard and JSON API."""
    init_error_reporting(settings)
    auth.check_admin_password(settings)
    app = FastAPI(
        title="enrichflow",
        version=enrichflow.__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        description="JSON API of the enrichflow dashboard (see docs/dashboard.md).",
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.secret_key = resolve_secret_key(engine, settings).value
    app.state.login_throttle = LoginThrottle()
    app.state.wake = wake or _no_wake
    app.state.templates = _templates()
    _install_handlers(app)
    app.include_router(health_router)
    app.include_router(callbacks_router)
    app.include_router(auth.router)
    app.include_router(openapi_router)
    app.include_router(rest_router)
    app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(directory=str(DASHBOARD_DIR / "static")), name="static")
    app.add_middleware(Hardening)
    return app
