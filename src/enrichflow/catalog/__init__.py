"""The catalog: clients, workstreams, the workflow registry, client configs, pipelines, uploads
and batch listings.

Every function takes a SQLAlchemy ``Connection`` and the caller owns the transaction, so the
CLI, the dashboard, the JSON API, the launch and the doctor read and write these tables through
the same statements. One module per entity; the state machine lives in ``db/``.
"""
