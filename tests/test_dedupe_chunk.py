"""De-duplication decided for a whole chunk at once, on both stores: ``dedupe_join`` makes the
leaders of a chunk's new keys in one insert, reads the existing ones without writing, and
concurrent chunks that share keys agree on every leader; ``dedupe_leaders`` hands a finished
leader's result to its followers; the runner's per-chunk service leaves an item whose key
cannot be computed to its own handler call.

The states are written directly (``tests/test_followers.py``'s batch of one leader and its
followers, used here as plain IN_PROGRESS states); ``tests/test_clay_reuse.py`` and
``tests/test_async_pipeline.py`` drive the same through the runner, the real sender and a
loopback Clay stand-in.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from sqlalchemy import Engine, select

from enrichflow.db.models import StepDedupe, WorkflowState
from enrichflow.db.states import dedupe_join, dedupe_leaders
from enrichflow.runner import DatabaseDedupeLeaders
from statements_sent import statements_sent
from test_followers import STEP, company, leader_ends

ws = WorkflowState.__table__


def writes(sent: list[tuple[str, object]]) -> list[str]:
    return [
        sql.split()[0].upper()
        for sql, _ in sent
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]


def paid_keys(engine: Engine, batch_id: int) -> dict[int, str]:
    """State id -> the key written on it (only the states that pay for a key have one)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(ws.c.id, ws.c.dedupe_key).where(
                ws.c.batch_id == batch_id, ws.c.dedupe_key.is_not(None)
            )
        )
        return {int(sid): key for sid, key in rows}


def test_a_chunk_makes_its_new_leaders_in_one_insert(engine: Engine) -> None:
    """The first state of each new key leads it (the later states of the chunk with that key
    follow it); the key is written on the leaders only; one INSERT for the chunk."""
    c = company(engine, followers=5)
    s = [c.leader, *c.followers]
    keys = {s[0]: "domain:acme.com", s[1]: "domain:globex.com", s[2]: "domain:acme.com"}
    keys[s[3]] = "domain:initech.com"
    with statements_sent(engine) as sent, engine.begin() as conn:
        decided = dedupe_join(conn, c.batch_id, STEP, keys)
    assert {sid: d.leader_state_id for sid, d in decided.items()} == {
        s[0]: s[0],
        s[1]: s[1],
        s[2]: s[0],
        s[3]: s[3],
    }
    assert decided[s[2]].leader_status == "IN_PROGRESS" and decided[s[2]].payload is None
    assert writes(sent) == ["INSERT", "UPDATE"]
    assert paid_keys(engine, c.batch_id) == {
        s[0]: "domain:acme.com",
        s[1]: "domain:globex.com",
        s[3]: "domain:initech.com",
    }

    # A later chunk: a known key follows its leader, a new one is led by its first state.
    with statements_sent(engine) as sent, engine.begin() as conn:
        later = dedupe_join(conn, c.batch_id, STEP, {s[4]: "domain:acme.com", s[5]: "domain:x.io"})
    assert (later[s[4]].leader_state_id, later[s[5]].leader_state_id) == (s[0], s[5])
    assert writes(sent) == ["INSERT", "UPDATE"]
    with engine.connect() as conn:
        assert conn.execute(
            select(StepDedupe.dedupe_key).where(StepDedupe.batch_id == c.batch_id)
        ).scalars().all() == sorted(
            ["domain:acme.com", "domain:globex.com", "domain:initech.com", "domain:x.io"]
        )


def test_known_keys_are_read_without_a_write_and_carry_a_finished_leaders_result(
    engine: Engine,
) -> None:
    """Once every key of a chunk has a leader, deciding it writes nothing; a COMPLETED
    leader's result comes with it, and a leader still waiting has none."""
    c = company(engine, followers=3)
    s = [c.leader, *c.followers]
    with engine.begin() as conn:
        dedupe_join(conn, c.batch_id, STEP, {s[0]: "domain:acme.com", s[1]: "domain:globex.com"})
    leader_ends(engine, c, "COMPLETED", {"employees": 40})

    with statements_sent(engine) as sent, engine.begin() as conn:
        decided = dedupe_join(
            conn, c.batch_id, STEP, {s[2]: "domain:acme.com", s[3]: "domain:globex.com"}
        )
    assert writes(sent) == []
    assert decided[s[2]].leader_state_id == s[0]
    assert decided[s[2]].payload == {"employees": 40}
    assert decided[s[3]].leader_state_id == s[1] and decided[s[3]].payload is None

    with engine.connect() as conn:
        known = dedupe_leaders(
            conn, c.batch_id, STEP, ["domain:acme.com", "domain:globex.com", "domain:new.io"]
        )
    assert sorted(known) == ["domain:acme.com", "domain:globex.com"]
    assert known["domain:acme.com"].leader_status == "COMPLETED"
    assert known["domain:globex.com"].leader_status == "IN_PROGRESS"


def race(engine: Engine, batch_id: int, chunks: list[dict[int, str]]) -> list[dict[int, int]]:
    """Each chunk joined in its own thread and transaction, all released at once: state id ->
    leader state id, per chunk."""
    decided: list[dict[int, int]] = [{} for _ in chunks]
    failures: list[BaseException] = []
    start = threading.Barrier(len(chunks))

    def join(i: int) -> None:
        try:
            start.wait()
            with engine.begin() as conn:
                got = dedupe_join(conn, batch_id, STEP, chunks[i])
            decided[i] = {sid: d.leader_state_id for sid, d in got.items()}
        except BaseException as exc:  # re-raised below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if failures:
        raise failures[0]
    return decided


def test_concurrent_chunks_sharing_keys_agree_on_every_leader(engine: Engine) -> None:
    """Two chunks join overlapping keys at the same time, each in its own transaction, in
    opposite orders: every key gets exactly one leader, both read the same one, and neither
    deadlocks (keys are inserted in sorted order)."""
    for attempt in range(5):
        c = company(engine, followers=19)
        states = [c.leader, *c.followers]
        names = [f"domain:k{attempt}-{n}.com" for n in range(12)]
        chunks = [
            {sid: names[n] for n, sid in enumerate(states[:12])},
            {sid: names[11 - n] for n, sid in enumerate(states[8:])},
        ]
        decided = race(engine, c.batch_id, chunks)
        leader_of: dict[str, set[int]] = {}
        for chunk, got in zip(chunks, decided, strict=True):
            for sid, key in chunk.items():
                leader_of.setdefault(key, set()).add(got[sid])
        assert all(len(leaders) == 1 for leaders in leader_of.values()), leader_of
        with engine.connect() as conn:
            rows = dict(
                conn.execute(
                    select(StepDedupe.dedupe_key, StepDedupe.leader_state_id).where(
                        StepDedupe.batch_id == c.batch_id
                    )
                ).all()
            )
        assert {key: {leader} for key, leader in rows.items()} == leader_of
        assert paid_keys(engine, c.batch_id) == {leader: key for key, leader in rows.items()}


def test_an_item_whose_key_cannot_be_computed_is_left_to_its_own_call(engine: Engine) -> None:
    """The runner's service decides the chunk's keys at once; an item whose key raises is
    left out (its own handler call raises the same error and fails only that item), and the
    others are looked up and joined as usual, in one transaction."""
    c = company(engine, followers=3)
    chunk = [
        SimpleNamespace(state_id=sid, batch_id=c.batch_id, step=STEP)
        for sid in (c.leader, *c.followers)
    ]
    names = {chunk[0].state_id: "domain:acme.com", chunk[2].state_id: "domain:acme.com"}
    names[chunk[3].state_id] = "domain:globex.com"

    def key_of(ctx: SimpleNamespace) -> str | None:
        if ctx.state_id == chunk[1].state_id:
            raise ValueError("no key for this row")
        return names[ctx.state_id]

    leaders = DatabaseDedupeLeaders(engine)
    leaders.chunk = chunk  # type: ignore[assignment]
    with engine.connect() as conn:
        leaders.look_up(conn, key_of, None, False)  # type: ignore[arg-type]
    with statements_sent(engine) as sent:
        first = leaders.join(chunk[0], key_of)  # type: ignore[arg-type]
        third = leaders.join(chunk[2], key_of)  # type: ignore[arg-type]
        fourth = leaders.join(chunk[3], key_of)  # type: ignore[arg-type]
    assert writes(sent) == ["INSERT", "UPDATE"]  # one join for the whole chunk
    assert (first.leader_state_id, third.leader_state_id) == (chunk[0].state_id,) * 2
    assert fourth.leader_state_id == chunk[3].state_id
    assert set(paid_keys(engine, c.batch_id)) == {chunk[0].state_id, chunk[3].state_id}
