"""The SQLite write-ahead log does not keep the size of the largest transaction forever."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from enrichflow.db.engine import WAL_SIZE_LIMIT, make_engine


def test_the_wal_is_cut_back_after_a_large_transaction(tmp_path: Path) -> None:
    """A transaction larger than the limit grows the log past it; once a checkpoint has copied
    it into the database and the next write starts the log over, the file is cut back."""
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE blob (data BLOB)"))
        megabytes = WAL_SIZE_LIMIT // 2**20 + 16
        with engine.begin() as conn:
            conn.execute(
                text(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :m) "
                    "INSERT INTO blob SELECT randomblob(1048576) FROM n"
                ),
                {"m": megabytes},
            )
        wal = path.with_name("wal.db-wal")
        assert wal.stat().st_size > WAL_SIZE_LIMIT
        raw = engine.raw_connection()
        try:
            busy, _, _ = raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            raw.close()
        assert busy == 0
        with engine.begin() as conn:  # starts the log over
            conn.execute(text("DELETE FROM blob WHERE rowid = 1"))
        assert wal.stat().st_size <= WAL_SIZE_LIMIT
    finally:
        engine.dispose()
