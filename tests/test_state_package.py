"""Every public function of the state package declares the status changes it can make, and
every declared change is one ``TRANSITIONS`` allows: a new statement cannot skip the check,
since one without a declaration fails here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import enrichflow.db.states as package
from enrichflow.db.states.transition import (
    Move,
    declared_moves,
    status_unchanged,
    transition,
)
from enrichflow.states import TRANSITIONS, Status, can_transition

MACHINERY = {"enrichflow.db.states.transition"}
"""The declaration machinery itself: its functions declare, they are not statements."""


def package_modules() -> list[ModuleType]:
    names = [package.__name__] + [
        info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    ]
    return [importlib.import_module(name) for name in names if name not in MACHINERY]


def functions_of(module: ModuleType) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The functions defined in ``module`` itself (not imported into it), private ones too."""
    for name, obj in vars(module).items():
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            yield name, obj


def undeclared(module: ModuleType) -> list[str]:
    """The public functions of ``module`` that declare nothing."""
    return [
        f"{module.__name__}.{name}"
        for name, fn in functions_of(module)
        if not name.startswith("_") and declared_moves(fn) is None
    ]


def illegal(moves: frozenset[Move]) -> list[str]:
    """The moves ``TRANSITIONS`` does not allow; a new state may be created PENDING, or already
    claimed (a status PENDING may move to)."""
    wrong = []
    for old, new in sorted(moves, key=str):
        allowed = (
            new is Status.PENDING or can_transition(Status.PENDING, new)
            if old is None
            else can_transition(old, new)
        )
        if not allowed:
            wrong.append(f"{old} -> {new}")
    return wrong


MODULES = package_modules()


def test_the_package_is_found_whole() -> None:
    names = {m.__name__.rsplit(".", 1)[-1] for m in MODULES}
    assert {"claim", "outcomes", "chain", "reap", "retry", "callbacks", "followers"} <= names
    assert {"sqlite", "postgres", "rollup", "reads"} <= names


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_every_public_function_declares_its_transitions(module: ModuleType) -> None:
    assert undeclared(module) == []


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_every_declared_transition_is_allowed(module: ModuleType) -> None:
    for name, fn in functions_of(module):
        moves = declared_moves(fn)
        if moves is not None:
            assert illegal(moves) == [], f"{module.__name__}.{name}"


def test_every_exported_function_is_declared() -> None:
    exported = [getattr(package, name) for name in package.__all__]
    functions = [obj for obj in exported if inspect.isfunction(obj)]
    assert len(functions) > 20
    assert [f.__qualname__ for f in functions if declared_moves(f) is None] == []


def test_the_writers_declare_what_they_move() -> None:
    """A sample read against the code: the statements everybody calls declare the moves the
    state machine names for them."""
    assert declared_moves(package.states_claim) == {
        (Status.PENDING, Status.QUEUED),
        (Status.PENDING, Status.IN_PROGRESS),
    }
    assert (Status.FAILED, Status.COMPLETED) in declared_moves(package.callback_complete)  # type: ignore[operator]
    assert declared_moves(package.states_dispatch_failed) == {
        (Status.QUEUED, Status.PENDING),
        (Status.QUEUED, Status.FAILED),
    }
    assert declared_moves(package.batch_counts) == frozenset()
    writers = {
        (old, new)
        for module in MODULES
        for _, fn in functions_of(module)
        for old, new in declared_moves(fn) or ()
        if old is not None
    }
    # every move the state machine allows is made by some statement
    assert writers == {(old, new) for old, targets in TRANSITIONS.items() for new in targets}


def test_a_function_without_a_declaration_is_caught() -> None:
    module = ModuleType("enrichflow.db.states.example")

    def states_forget(conn: Any) -> None:
        """Changes a status without saying so."""

    @status_unchanged
    def states_count(conn: Any) -> int:
        return 0

    for fn in (states_forget, states_count):
        fn.__module__ = module.__name__
        setattr(module, fn.__name__, fn)
    assert undeclared(module) == ["enrichflow.db.states.example.states_forget"]


def test_an_illegal_declaration_is_caught() -> None:
    @transition(Status.COMPLETED, Status.PENDING)
    @transition(None, Status.SKIPPED)
    @transition(Status.FAILED, Status.PENDING)
    def states_reopen(conn: Any) -> None:
        """Moves what TRANSITIONS does not allow, and creates what no claim could make."""

    moves = declared_moves(states_reopen)
    assert moves is not None and len(moves) == 3
    assert illegal(moves) == ["COMPLETED -> PENDING", "None -> SKIPPED"]
