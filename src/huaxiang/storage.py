"""Atomic publication of a folder: readers see the old version or the new, never half.

``DIR/data`` (or any published folder) is a symbolic link to a version under
``DIR/.huaxiang/versions/``. A new version is written in full, then the link is
replaced with ``os.replace`` (atomic on POSIX). A failure before that leaves
the previous version in place and removes the partial one. A version left behind
by a writer that was killed (its ``.writer`` file names a process that is gone) is
removed by the next publication of the same target.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from huaxiang.errors import WorkspaceError

VERSIONS = Path(".huaxiang") / "versions"
WRITER = ".writer"
"""File in a version being written: the writer's process id (removed when published)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned(target: Path) -> list[Path]:
    """Remove the unpublished versions of ``target`` whose writer process is gone; the removed paths."""
    versions = target.parent / VERSIONS
    current = target.resolve() if target.is_symlink() else None
    removed: list[Path] = []
    for version in sorted(versions.glob(f"{target.name}-*")) if versions.is_dir() else []:
        writer = version / WRITER
        if version == current or not writer.is_file():
            continue
        try:
            pid = int(writer.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(version, ignore_errors=True)
            removed.append(version)
    return removed


@contextmanager
def publishing(target: Path) -> Iterator[Path]:
    """Yield an empty folder; when the block ends without error, it becomes ``target``."""
    if target.exists() and not target.is_symlink():
        raise WorkspaceError(
            f"{target} is a plain folder; huaxiang publishes it as a link to a version. "
            f"Move it away (e.g. to {target.name}.bak) and run again."
        )
    versions = target.parent / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    version = versions / f"{target.name}-{stamp}-{uuid.uuid4().hex[:8]}"
    version.mkdir()
    (version / WRITER).write_text(str(os.getpid()), encoding="utf-8")
    previous = target.resolve() if target.is_symlink() else None
    try:
        yield version
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    (version / WRITER).unlink()
    link = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.link"
    os.symlink(os.path.relpath(version, target.parent), link)
    os.replace(link, target)
    if previous is not None and previous != version and previous.parent == versions:
        shutil.rmtree(previous, ignore_errors=True)
