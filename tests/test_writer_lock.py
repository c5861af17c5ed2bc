"""The in-process SQLite writer lock's fast lane (see ``db.engine._WriterLock``)."""

from __future__ import annotations

import threading
import time

from enrichflow.db.engine import _WriterLock


def test_an_urgent_writer_goes_before_waiting_ordinary_ones() -> None:
    lock = _WriterLock()
    order: list[str] = []
    lock.acquire()  # held while both wait

    def take(name: str, urgent: bool) -> None:
        lock.acquire(urgent=urgent)
        order.append(name)
        lock.release()

    ordinary = threading.Thread(target=take, args=("ordinary", False))
    ordinary.start()
    deadline = time.monotonic() + 5
    while not lock._cond._waiters:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.001)
    fast = threading.Thread(target=take, args=("urgent", True))
    fast.start()
    while lock._urgent_waiting == 0:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    lock.release()
    ordinary.join(5)
    fast.join(5)
    assert order == ["urgent", "ordinary"]


def test_the_lock_excludes() -> None:
    lock = _WriterLock()
    inside = 0
    most = 0
    guard = threading.Lock()

    def work(urgent: bool) -> None:
        nonlocal inside, most
        for _ in range(200):
            lock.acquire(urgent=urgent)
            with guard:
                inside += 1
                most = max(most, inside)
            with guard:
                inside -= 1
            lock.release()

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most == 1
