"""Outbound HTTP for the ``webhook`` and ``http`` handlers (:mod:`enrichflow.steps.webhook`,
:mod:`enrichflow.steps.http`): transport, signing, limits and the submission ledger. Nothing
here imports :mod:`enrichflow.steps`.

Modules:

* :mod:`~enrichflow.webhooks.signing` — signed callback tokens and callback URLs.
* :mod:`~enrichflow.webhooks.redact` — keeping URLs and secrets out of messages and logs.
* :mod:`~enrichflow.webhooks.ratelimit` — process-wide token buckets and concurrency limits.
* :mod:`~enrichflow.webhooks.http` — one shared HTTP client and error classification.
* :mod:`~enrichflow.webhooks.ledger` — lifetime submission counts per webhook URL.
* :mod:`~enrichflow.webhooks.sandbox` — a local stand-in for a Clay table, for demos and tests.
"""
