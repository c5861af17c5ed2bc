"""What every answer of the app carries, and what every request body must declare.

:class:`Hardening` is a plain ASGI middleware around the whole app (pages, API, callbacks,
static files, error pages), cheap enough for the callback hot path:

* security headers on every response: a Content-Security-Policy that allows no inline script
  or style and no framing, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer`` and ``X-Frame-Options: DENY`` for browsers without CSP;
* bounded bodies before anything reads them: a body of unknown length (chunked) is refused
  with 411 and a declared length above the route's limit with 413, because FastAPI and the
  form parser read a body into memory before the route's login check runs. Callbacks keep
  their own streamed limit (``callback_max_bytes``) and answer 413 themselves.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FORM_MAX_BYTES", "MULTIPART_SLACK", "SECURITY_HEADERS", "Hardening"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
FORM_MAX_BYTES = 1024 * 1024
"""Largest body of a form post or JSON API call (uploads have their own limit)."""
MULTIPART_SLACK = 64 * 1024
"""Multipart bodies may be this much larger than the file they carry (boundaries, fields)."""
_CALLBACKS = "/callbacks/"


class Hardening:
    """Security headers on every response; 411/413 for bodies that are unbounded or too big."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _body_refusal(self, scope: Scope) -> tuple[int, bytes] | None:
        if scope["path"].startswith(_CALLBACKS):
            return None
        declared: bytes | None = None
        chunked = multipart = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-type":
                multipart = value.lower().startswith(b"multipart/")
        if declared is None:
            return (411, b"a request body must declare its Content-Length") if chunked else None
        if multipart:
            limit = int(scope["app"].state.settings.upload_max_bytes)
            if not declared.isdigit() or int(declared) > limit + MULTIPART_SLACK:
                return 413, f"the upload is larger than the limit of {limit} bytes".encode()
        elif not declared.isdigit() or int(declared) > FORM_MAX_BYTES:
            return 413, f"the request body is larger than {FORM_MAX_BYTES} bytes".encode()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        refusal = self._body_refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send_with_headers)
            return
        status, text = refusal
        await send_with_headers(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(text)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send_with_headers({"type": "http.response.body", "body": text})
