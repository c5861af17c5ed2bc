"""Reuse across batches: a de-duplication key that a state of the same workflow already paid
for (COMPLETED, recent enough, same workstream and client unless shared) completes from that
result without a send.

Only states that sent carry a ``dedupe_key`` (each key's leader, set by ``dedupe_join``), so the
partial index ``ix_workflow_states_reuse`` holds one entry per paid send, and a chunk's keys
are looked up in one statement of index ranges.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Connection, Select, bindparam, select

from enrichflow.db.states.base import batches, results, status_in, ws
from enrichflow.db.states.transition import status_unchanged
from enrichflow.states import Status


class ReusableResult(NamedTuple):
    """The newest paid result of one key: the state that paid and its payload."""

    state_id: int
    batch_id: int
    payload: dict[str, Any]


def _reusable_query(across_clients: bool) -> Select[Any]:
    this = batches.alias("this")
    source = batches.alias("source")
    batch_id = bindparam("batch_id", type_=BigInteger)
    query = (
        select(ws.c.dedupe_key, ws.c.id, ws.c.batch_id, results.c.payload)
        .select_from(
            ws.join(source, source.c.id == ws.c.batch_id)
            .join(this, this.c.id == batch_id)
            .join(
                results,
                (results.c.item_id == ws.c.item_id) & (results.c.step_name == ws.c.step_name),
            )
        )
        .where(
            ws.c.step_name == bindparam("step_name"),
            ws.c.dedupe_key.in_(bindparam("keys", expanding=True)),
            ws.c.updated_at >= bindparam("since_ms"),
            status_in(Status.COMPLETED),
            ws.c.batch_id != batch_id,
            source.c.workstream_slug == this.c.workstream_slug,
        )
        .order_by(ws.c.updated_at, ws.c.id)
    )
    if not across_clients:
        query = query.where(source.c.client_id == this.c.client_id)
    return query


# Built once, with bound parameters: building the statement on every call cost more than
# running it, and a runner makes one call per chunk.
REUSABLE = {across: _reusable_query(across) for across in (False, True)}


@status_unchanged
def results_reusable(
    conn: Connection,
    batch_id: int,
    step_name: str,
    keys: Collection[str],
    since_ms: int,
    across_clients: bool,
) -> dict[str, ReusableResult]:
    """key -> the newest COMPLETED result of ``step_name`` for it, paid for by another batch of
    the same workstream (and the same client unless ``across_clients``) at or after
    ``since_ms``: one statement for all ``keys`` of a chunk."""
    if not keys:
        return {}
    params = {
        "batch_id": batch_id,
        "step_name": step_name,
        "keys": sorted(set(keys)),
        "since_ms": since_ms,
    }
    found: dict[str, ReusableResult] = {}
    for key, state_id, source_batch, payload in conn.execute(REUSABLE[across_clients], params):
        found[key] = ReusableResult(int(state_id), int(source_batch), payload)
    return found
