"""The database-backed :class:`~enrichflow.steps.webhook.WebhookLedger`.

A Clay webhook source accepts a fixed number of submissions in its lifetime, so every send is
counted in ``webhook_submissions`` under the SHA-256 of the URL (the URL is a credential and is
never stored; ``url_redacted`` is ``scheme://host/…``, for display). The increment is one
atomic statement on both dialects::

    INSERT INTO webhook_submissions (...) VALUES (:key, :redacted, 1, :now)
    ON CONFLICT (url_key) DO UPDATE SET submissions = webhook_submissions.submissions + 1
    RETURNING submissions

so concurrent workers (threads or processes) each get a distinct count and cannot overshoot a
limit (SQLite has ``RETURNING`` since 3.35).
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from enrichflow.db.engine import is_postgres, reading
from enrichflow.db.models import WebhookSubmission

__all__ = [
    "WARN_AT",
    "DatabaseLedger",
    "SourceUsage",
    "has_room",
    "sources_near_limit",
    "submissions_by_key",
    "url_key",
]

WARN_AT = 45_000
"""Submissions from which a source is reported as filling up (90% of Clay's 50,000)."""

submissions_table = typing.cast(Table, WebhookSubmission.__table__)


def url_key(url: str) -> str:
    """The ledger key of a webhook URL: its SHA-256 hex digest."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def has_room(submissions: int, limit: int) -> bool:
    """Whether a URL with ``submissions`` recorded may take another one: the sender's choice
    of URL and a launch's preflight both ask this."""
    return submissions < limit


class DatabaseLedger:
    """Submission counts per webhook URL in ``webhook_submissions``; safe across threads and
    processes (each call is its own short transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def submissions(self, url_key: str) -> int:
        with reading(self.engine) as conn:
            found = conn.execute(
                select(submissions_table.c.submissions).where(
                    submissions_table.c.url_key == url_key
                )
            ).scalar_one_or_none()
        return int(found or 0)

    def record_submission(self, url_key: str, url_redacted: str = "") -> int:
        with self.engine.begin() as conn:
            return submission_record(conn, url_key, url_redacted, datetime.now(UTC))


def submission_record(conn: Connection, url_key: str, url_redacted: str, now: datetime) -> int:
    """Add one submission for ``url_key`` in the caller's transaction; the new count."""
    t = submissions_table
    dialect_insert = postgresql.insert if is_postgres(conn) else sqlite.insert
    stmt = dialect_insert(t).values(
        url_key=url_key, url_redacted=url_redacted[:300], submissions=1, updated_at=now
    )
    set_: dict[str, typing.Any] = {"submissions": t.c.submissions + 1, "updated_at": now}
    if url_redacted:
        set_["url_redacted"] = stmt.excluded.url_redacted
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.url_key], set_=set_)
    return int(conn.execute(stmt.returning(t.c.submissions)).scalar_one())


def submissions_by_key(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """The recorded submissions of each of ``keys`` (0 for a URL never sent to)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    t = submissions_table
    found = dict(
        conn.execute(select(t.c.url_key, t.c.submissions).where(t.c.url_key.in_(wanted))).all()
    )
    return {key: int(found.get(key) or 0) for key in wanted}


@dataclass(frozen=True, slots=True)
class SourceUsage:
    """One webhook source's lifetime usage, as ``status`` and the dashboard show it."""

    url_key: str
    url_redacted: str
    submissions: int
    updated_at: datetime | None


def sources_near_limit(conn: Connection, threshold: int = WARN_AT) -> list[SourceUsage]:
    """Webhook sources with at least ``threshold`` submissions, fullest first."""
    t = submissions_table
    rows = conn.execute(
        select(t.c.url_key, t.c.url_redacted, t.c.submissions, t.c.updated_at)
        .where(t.c.submissions >= threshold)
        .order_by(t.c.submissions.desc(), t.c.url_key)
    )
    return [SourceUsage(*row) for row in rows]
