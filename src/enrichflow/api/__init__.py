"""The HTTP service: one FastAPI app (:func:`~enrichflow.api.app.create_app`) made of routers.

* :mod:`~enrichflow.api.callbacks` — ``POST /callbacks/{token}``, where ASYNC steps complete.
* :mod:`~enrichflow.api.app` — the app factory and ``GET /healthz``.

Errors of the core (:mod:`enrichflow.errors`, invalid tokens) are mapped to HTTP here only.
"""
