"""What the command lines share: the consoles, the workspace option, dates and error printing.

``huaxiang.cli`` and ``huaxiang.audience.cli`` (mounted as ``huaxiang audience``) both
use these, so a date or an error reads the same in every command.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

WorkspaceOption = Annotated[
    Path, typer.Option("--workspace", "-w", help="The workspace folder (holds huaxiang.yaml).")
]


def parse_date(value: str) -> dt.date:
    """``YYYY-MM-DD`` as a date, or a Typer usage error that says how to write it."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-01."
        ) from None


def print_error(error: Exception, label: str = "error:") -> None:
    """One of huaxiang's own errors, plainly: its message quotes user data, so no markup, no wrapping."""
    err.print(f"[bold red]{label}[/] ", end="", soft_wrap=True)
    err.print(str(error), highlight=False, markup=False, soft_wrap=True)
