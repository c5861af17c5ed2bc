"""Server-side dashboard sessions: a signed cookie is necessary, never sufficient.

The cookie carries a random session id; the session is valid only while a
``dashboard_sessions`` row holds that id's SHA-256, has not expired, and carries the *tag* of
the admin password it was opened with. So:

* logging out deletes the row, and a copied cookie stops working at once;
* changing ``ENRICHFLOW_ADMIN_PASSWORD`` changes the tag, so every session opened under the old
  password stops working, in every process that shares the database, with no list to clear;
* a session id read from the database is useless without the signing key (only its hash is
  kept), and the tag is scrypt of the password, so a database dump does not hand out a hash
  that is fast to crack.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Connection, delete, insert, select

from enrichflow.db.models import DashboardSession

__all__ = [
    "SESSION_MAX_AGE",
    "password_tag",
    "session_close",
    "session_is_open",
    "session_open",
]

SESSION_MAX_AGE = 12 * 3600
"""Seconds a session lasts after login (the cookie's max-age and the row's expiry)."""

_TAG_SALT = b"enrichflow-admin-password-tag"


def password_tag(password: str, key: str) -> str:
    """A slow, keyed digest of the admin password that sessions are bound to."""
    salt = hmac.new(key.encode("utf-8"), _TAG_SALT, hashlib.sha256).digest()
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return digest.hex()


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def session_open(conn: Connection, tag: str, now_ms: int) -> str:
    """A new session's id (its row inserted); expired rows are swept on the way."""
    conn.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now_ms))
    session_id = secrets.token_urlsafe(32)
    conn.execute(
        insert(DashboardSession).values(
            id_hash=_id_hash(session_id),
            password_tag=tag,
            created_at=now_ms,
            expires_at=now_ms + SESSION_MAX_AGE * 1000,
        )
    )
    return session_id


def session_is_open(conn: Connection, session_id: str, tag: str, now_ms: int) -> bool:
    """Whether the session exists, has not expired, and was opened under this password."""
    stored = conn.execute(
        select(DashboardSession.password_tag).where(
            DashboardSession.id_hash == _id_hash(session_id),
            DashboardSession.expires_at > now_ms,
        )
    ).scalar_one_or_none()
    return stored is not None and hmac.compare_digest(stored, tag)


def session_close(conn: Connection, session_id: str) -> None:
    """Ends the session (logout): its cookie is refused from now on."""
    conn.execute(delete(DashboardSession).where(DashboardSession.id_hash == _id_hash(session_id)))
