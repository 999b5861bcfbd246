"""Exports of audience members to CSV or Parquet: plain user ids, or salted SHA-256 for partners.

Files go into one folder (``DIR/exports/`` by default) under a bare, checked
file name: no folders, no ``..``, no hidden files, and the extension says the
format. A file is written to a temporary name in the same folder and renamed
into place, so a reader never sees half an export and a failure leaves nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from huaxiang.audience.errors import ExportError

FileFormat = Literal["csv", "parquet"]
IdMode = Literal["plain", "sha256"]
FORMATS: dict[str, FileFormat] = {".csv": "csv", ".parquet": "parquet"}
FILE_NAME = re.compile(r"^[\w][\w\-. ]{0,127}$")
MIN_SALT_CHARS = 8


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    file_format: FileFormat
    id_mode: IdMode
    sha256: str


def check_file_name(name: str, file_format: FileFormat | None = None) -> FileFormat:
    """The format of a bare export file name (``dyson_fans.csv``), or an :class:`ExportError`."""
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name:
        raise ExportError(
            f"export file name {name!r} must be a bare file name (no folders, no '..'); "
            "exports are written into the workspace's exports/ folder."
        )
    if not FILE_NAME.match(name) or name != name.strip():
        raise ExportError(
            f"export file name {name!r} is not allowed: use letters, digits, '_', '-', '.' and spaces, "
            "start with a letter or digit, at most 128 characters (e.g. dyson_fans_2026-10-31.csv)."
        )
    suffix = Path(name).suffix.lower()
    found = FORMATS.get(suffix)
    if found is None:
        raise ExportError(f"export file name {name!r} must end in .csv or .parquet.")
    if file_format is not None and file_format != found:
        raise ExportError(f"export file name {name!r} ends in {suffix} but the format is {file_format}.")
    return found


def hashed_ids(user_ids: list[str], salt: str) -> list[str]:
    """Hex SHA-256 of salt + user id for each id (what outside partners receive)."""
    prefix = salt.encode("utf-8")
    return [hashlib.sha256(prefix + user_id.encode("utf-8")).hexdigest() for user_id in user_ids]


def write_export(
    user_ids: list[str],
    folder: Path,
    file_name: str,
    *,
    file_format: FileFormat | None = None,
    salt: str | None = None,
    overwrite: bool = False,
    extra: dict[str, list[Any]] | None = None,
) -> ExportResult:
    """Write the ids (in the order given) to ``folder/file_name``; with ``salt``, their salted SHA-256.

    ``extra`` adds columns after the id (e.g. ``group`` of a split), one value per id.
    """
    fmt = check_file_name(file_name, file_format)
    if salt is not None and len(salt) < MIN_SALT_CHARS:
        raise ExportError(
            f"the salt has {len(salt)} characters; use at least {MIN_SALT_CHARS} (a secret shared with the "
            "partner), or export plain ids."
        )
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; choose another file name or overwrite it.")
    if salt is None:
        table = pa.table({"user_id": pa.array(user_ids, pa.string())})
    else:
        table = pa.table({"user_id_sha256": pa.array(hashed_ids(user_ids, salt), pa.string())})
    for name, values in (extra or {}).items():
        if len(values) != len(user_ids):
            raise ExportError(f"column {name!r} has {len(values)} values for {len(user_ids)} users.")
        table = table.append_column(name, pa.array(values))
    handle, temporary = tempfile.mkstemp(prefix=f".{file_name}.", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        if fmt == "csv":
            pacsv.write_csv(table, temporary)
        else:
            pq.write_table(table, temporary)
        digest = hashlib.sha256(Path(temporary).read_bytes()).hexdigest()
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return ExportResult(target, len(user_ids), fmt, "plain" if salt is None else "sha256", digest)
