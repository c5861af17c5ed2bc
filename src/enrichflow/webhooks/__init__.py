"""Outbound HTTP for steps: Clay table webhooks (ASYNC) and generic JSON APIs (SYNC).

Modules:

* :mod:`~enrichflow.webhooks.signing` — signed callback tokens and callback URLs.
* :mod:`~enrichflow.webhooks.redact` — keeping URLs and secrets out of messages and logs.
* :mod:`~enrichflow.webhooks.ratelimit` — process-wide token buckets and concurrency limits.
* :mod:`~enrichflow.webhooks.http` — one shared HTTP client and error classification.
* :mod:`~enrichflow.webhooks.sender` — the ``webhook`` handler (send a row to Clay, wait).
* :mod:`~enrichflow.webhooks.http_step` — the ``http`` handler (call a JSON API, keep fields).
* :mod:`~enrichflow.webhooks.sandbox` — a local stand-in for a Clay table, for demos and tests.

The handler modules register themselves when imported.
"""
