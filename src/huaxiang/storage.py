"""Atomic publication of a folder: readers see the old version or the new, never half.

``DIR/data`` (or any published folder) is a symbolic link to a version under
``DIR/.huaxiang/versions/``. A new version is written in full, then the link is
replaced with ``os.replace`` (atomic on POSIX). A failure before that leaves
the previous version in place and removes the partial one.
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
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    version = versions / f"{target.name}-{stamp}-{uuid.uuid4().hex[:8]}"
    version.mkdir()
    previous = target.resolve() if target.is_symlink() else None
    try:
        yield version
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    link = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.link"
    os.symlink(os.path.relpath(version, target.parent), link)
    os.replace(link, target)
    if previous is not None and previous != version and previous.parent == versions:
        shutil.rmtree(previous, ignore_errors=True)
