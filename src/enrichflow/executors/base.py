"""The executor contract the dispatcher relies on."""

from __future__ import annotations

from typing import Protocol

from enrichflow.db.states import BatchStepInfo, Claim


class Executor(Protocol):
    """Runs chunks of claims somewhere; the runner there records their outcomes."""

    starts_on_claim: bool
    """True when a chunk starts running the moment it is submitted, so the dispatcher may
    claim straight to IN_PROGRESS; False when it may wait (remote), so claims stay QUEUED
    until the runner starts them."""

    def reserve(self, step: BatchStepInfo) -> bool:
        """Take a slot for one more chunk of ``step`` if it has one (False applies
        back-pressure). The slot is held from here, so nothing else (a chained chunk) can take
        it while the dispatcher claims the chunk; :meth:`submit` or :meth:`release` follows."""
        ...

    def submit(self, step: BatchStepInfo, claims: list[Claim]) -> None:
        """Hand over one chunk in the slot :meth:`reserve` took; must not block on its
        execution."""
        ...

    def release(self, step: BatchStepInfo) -> None:
        """Give back a reserved slot that got no chunk (nothing left to claim)."""
        ...

    def busy(self) -> bool:
        """Whether any submitted chunk is still running."""
        ...

    def wait(self, timeout: float) -> None:
        """Return when a chunk finishes, :meth:`wake` is called, or ``timeout`` passes."""
        ...

    def wake(self) -> None:
        """Interrupt :meth:`wait` (a callback landed, a batch was launched)."""
        ...

    def close(self) -> None: ...
