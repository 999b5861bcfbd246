"""Errors of the audience engine, in the project's hierarchy (:mod:`huaxiang.errors`)."""

from __future__ import annotations

from huaxiang.errors import NotFoundError, RequestError


class AudienceError(RequestError):
    """An audience definition or operation cannot be used as given (HTTP 400)."""


class DefinitionError(AudienceError):
    """An audience definition is malformed or does not fit the snapshot's tags.

    ``path`` says where in the JSON tree (``$.and[1].not``) or ``line``/``column``
    where in the text form, when known.
    """

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


class EmptyAudienceError(AudienceError):
    """An operation that needs members (top N, split, sample, export) got an empty audience."""

    http_status = 422


class AudienceNotFoundError(NotFoundError):
    """No saved audience has the given name."""


class ExportError(AudienceError):
    """An export cannot be written as asked (bad file name, file exists, missing salt)."""
