"""Each public function of the state package declares, as data, the status changes it can make.

``tests/test_state_package.py`` finds every public function of the package and checks its
declaration against :data:`enrichflow.states.TRANSITIONS`; a function without one fails that
test, so no statement can change a status unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from enrichflow.states import Status

__all__ = ["Move", "declared_moves", "status_unchanged", "transition"]

F = TypeVar("F", bound=Callable[..., Any])

Move = tuple[Status | None, Status]
"""``(from, to)``; ``from`` is ``None`` when the statement creates the state as ``to``."""

_ATTRIBUTE = "state_moves"


def _statuses(given: Status | Iterable[Status | None] | None) -> list[Status | None]:
    # A Status is a str, itself iterable: test for one before iterating.
    if given is None or isinstance(given, Status):
        return [given]
    return list(given)


def transition(
    sources: Status | Iterable[Status | None] | None, targets: Status | Iterable[Status]
) -> Callable[[F], F]:
    """Declare that the decorated function may move a state from any of ``sources`` to any of
    ``targets`` (``None`` among the sources: it creates states); stack for unrelated moves."""

    def declare(fn: F) -> F:
        moves: set[Move] = set(getattr(fn, _ATTRIBUTE, ()))
        for old in _statuses(sources):
            for new in _statuses(targets):
                if new is None:
                    raise TypeError(f"{fn.__qualname__}: a transition needs a target status")
                moves.add((old, new))
        setattr(fn, _ATTRIBUTE, frozenset(moves))
        return fn

    return declare


def status_unchanged(fn: F) -> F:
    """Declare that the decorated function changes no state's status: it reads, builds a
    fragment of SQL, or writes other columns or tables."""
    setattr(fn, _ATTRIBUTE, frozenset(getattr(fn, _ATTRIBUTE, ())))
    return fn


def declared_moves(fn: Callable[..., Any]) -> frozenset[Move] | None:
    """What ``fn`` declared; ``None`` when it declared nothing."""
    moves: frozenset[Move] | None = getattr(fn, _ATTRIBUTE, None)
    return moves
