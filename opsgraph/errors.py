"""The errors a task handler raises to say how its attempt ended (opsgraph's public API)."""

from __future__ import annotations

__all__ = ["FatalError", "RetryableError"]


class FatalError(Exception):
    """The task cannot succeed: no retry; it is FAILED and dead-lettered with this message."""


class RetryableError(Exception):
    """This attempt failed for a reason that may pass: the retry policy decides, and
    `retry_after` (seconds) replaces the policy's backoff for this retry when given."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self.retry_after = retry_after
