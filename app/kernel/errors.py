"""Domain errors raised by services and mapped at the edge (GraphQL payload errors, HTTP codes)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of expected failures; `code` is what clients branch on."""

    code = "INVALID"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class NotFound(DomainError):
    code = "NOT_FOUND"


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"


class InvalidInput(DomainError):
    code = "INVALID"
