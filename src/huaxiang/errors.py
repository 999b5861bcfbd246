"""One exception hierarchy for the whole package.

Every class inherits both the project's base and the builtin a caller would
naturally catch (``ValueError``, ``KeyError``, ``FileNotFoundError``), and
carries the HTTP status the service answers with.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HuaxiangError(Exception):
    """Base of every error huaxiang raises on purpose."""

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(HuaxiangError, ValueError):
    """A workspace file (huaxiang.yaml, tags/*.yaml) is malformed or invalid."""

    http_status = 400


class RuleError(ConfigError):
    """A tag rule (a SQL expression in a tag file) cannot be parsed, checked or compiled.

    ``line`` and ``column`` (1-based, within the rule text) say where, when known.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class CatalogError(ConfigError):
    """The tag catalog (tags/*.yaml) is invalid: a malformed tag, a duplicate id, an unknown
    reference or a dependency cycle. The message lists every problem, one per line."""


class SourceError(HuaxiangError, ValueError):
    """A source file or table cannot be read as configured (the whole source fails)."""

    http_status = 400


class SourceNotFoundError(SourceError, FileNotFoundError):
    """A configured source path does not exist."""

    http_status = 404


class StrictIngestError(HuaxiangError, ValueError):
    """``--strict`` ingestion found rejected rows."""

    http_status = 422


class WorkspaceError(HuaxiangError, ValueError):
    """The workspace folder is missing, incomplete or already exists."""

    http_status = 400


class NotFittedError(HuaxiangError, ValueError):
    """A segmenter or model was used before ``fit`` (scikit-learn's convention)."""

    http_status = 409


class MissingInputError(HuaxiangError, LookupError):
    """The data lacks something a tag needs (a brand, a category level): the build skips the tag.

    Raised by a maker once it has looked at the data; the build records the message as
    the tag's skip reason and goes on, like a tag whose input column is absent.
    """

    http_status = 422


class NotFoundError(HuaxiangError, LookupError):
    """A snapshot, a tag in a snapshot or a user that a request names does not exist."""

    http_status = 404


class RequestError(HuaxiangError, ValueError):
    """A request names things that exist but cannot be used that way (e.g. a migration matrix
    of a numeric tag)."""

    http_status = 400


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
