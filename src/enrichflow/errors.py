"""Typed errors. Each docstring is the default message; HTTP mapping lives only in ``api/``."""

from __future__ import annotations


class EnrichflowError(Exception):
    """Something went wrong in enrichflow."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(EnrichflowError):
    """The configuration (client, workstream, pipeline, registry or settings) is invalid."""


class InputError(EnrichflowError):
    """The input file cannot be used."""


class NotFoundError(EnrichflowError):
    """The requested object does not exist."""


class ConflictError(EnrichflowError):
    """The object is not in a state that allows the action (a finished batch cannot be paused)."""


class StepError(EnrichflowError):
    """A step handler failed."""

    retryable: bool = True


class RetryableStepError(StepError):
    """A step failed for a reason that may pass (timeout, 5xx, rate limit); it will be retried."""

    retryable = True

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentStepError(StepError):
    """A step failed for a reason that retrying cannot fix (bad config, 4xx, bad data)."""

    retryable = False
