"""Touch outcomes of an experiment (opened / used) imported from a file.

A channel reports which reached users opened the message and used the coupon. The file is
CSV (with a header) or Parquet with the columns ``user_id``, ``variant``, ``opened`` and
``used``; booleans are ``true``/``false``, ``1``/``0``, ``yes``/``no`` (any case), an empty
cell is unknown. Every user must be in the experiment's assignment with that variant, once.
A malformed file is refused whole, naming up to :data:`MAX_LISTED` bad rows by number
(data rows counted from 1; in a CSV row N is on line N + 1, after the header).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from huaxiang.analysis.experiments import OUTCOMES_FILE, assignment_path, experiment_dir
from huaxiang.errors import SourceError, SourceNotFoundError

COLUMNS = ("user_id", "variant", "opened", "used")
TRUE_TEXT = frozenset({"true", "1", "yes", "y", "t"})
FALSE_TEXT = frozenset({"false", "0", "no", "n", "f"})
MAX_LISTED = 5


class OutcomeFileError(SourceError):
    """A touch-outcome file is malformed; the message names the file, rows and fields."""

    http_status = 422


def _read(path: Path) -> tuple[pa.Table, bool]:
    if not path.is_file():
        raise SourceNotFoundError(f"{path}: outcome file not found.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path), False
        if suffix == ".csv":
            names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16)).column_names
            types = {name: pa.string() for name in names}
            options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
            return pacsv.read_csv(path, convert_options=options), True
    except (pa.ArrowInvalid, OSError) as error:
        raise OutcomeFileError(f"{path}: cannot be read as {suffix[1:].upper()}: {error}") from None
    raise OutcomeFileError(f"{path}: outcome files are .csv or .parquet, not '{suffix or 'no suffix'}'.")


def _where(row: int, csv: bool) -> str:
    return f"row {row} (line {row + 1})" if csv else f"row {row}"


def _booleans(column: pa.ChunkedArray, field: str, csv: bool, problems: list[str]) -> pa.Array:
    if pa.types.is_boolean(column.type):
        return column.combine_chunks()
    text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(column, pa.string()))).to_pylist()
    values: list[bool | None] = []
    for row, item in enumerate(text, start=1):
        if item is None or item == "":
            values.append(None)
        elif item in TRUE_TEXT:
            values.append(True)
        elif item in FALSE_TEXT:
            values.append(False)
        else:
            values.append(None)
            problems.append(
                f"{_where(row, csv)}: field '{field}' is {item!r}, not a boolean; write true/false, 1/0, "
                "yes/no or leave it empty when unknown"
            )
    return pa.array(values, pa.bool_())


def read_outcomes(path: str | Path, assignment: pa.Table) -> pa.Table:
    """Check an outcome file against an assignment; ``user_id``, ``variant``, ``opened``, ``used``.

    Raises
    ------
    OutcomeFileError
        A column is missing, or rows are malformed (listed by number with the field and the fix).
    """
    file = Path(path)
    table, csv = _read(file)
    missing = [name for name in COLUMNS if name not in table.column_names]
    if missing:
        raise OutcomeFileError(
            f"{file}: missing column(s) {', '.join(missing)}; an outcome file has the columns "
            f"{', '.join(COLUMNS)} (found: {', '.join(table.column_names) or 'none'})."
        )
    if table.num_rows == 0:
        raise OutcomeFileError(f"{file}: no rows; export the outcomes of the reached users.")
    problems: list[str] = []
    user_ids = pc.cast(table.column("user_id"), pa.string()).to_pylist()
    variants = pc.cast(table.column("variant"), pa.string()).to_pylist()
    opened = _booleans(table.column("opened"), "opened", csv, problems)
    used = _booleans(table.column("used"), "used", csv, problems)
    assigned = dict(
        zip(assignment.column("user_id").to_pylist(), assignment.column("variant").to_pylist(), strict=True)
    )
    seen: dict[str, int] = {}
    for row, (user, variant) in enumerate(zip(user_ids, variants, strict=True), start=1):
        where = _where(row, csv)
        if user is None or user.strip() == "":
            problems.append(f"{where}: field 'user_id' is empty")
            continue
        if user in seen:
            problems.append(
                f"{where}: user_id {user!r} already appears in row {seen[user]}; keep one row per user"
            )
            continue
        seen[user] = row
        if user not in assigned:
            problems.append(f"{where}: user_id {user!r} is not in the experiment's assignment")
        elif variant != assigned[user]:
            problems.append(
                f"{where}: field 'variant' is {variant!r}, but user {user!r} was assigned to "
                f"{assigned[user]!r}"
            )
    if problems:
        shown = problems[:MAX_LISTED]
        more = f"\n... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise OutcomeFileError(
            f"{file}: {len(problems)} problem(s); nothing was imported:\n" + "\n".join(shown) + more
        )
    return pa.table(
        {
            "user_id": pa.array(user_ids, pa.string()),
            "variant": pa.array(variants, pa.string()),
            "opened": opened,
            "used": used,
        }
    )


def import_outcomes(workspace_dir: str | Path, name: str, path: str | Path) -> dict[str, dict[str, int]]:
    """Import an outcome file for experiment ``name``; per variant: rows, opened and used counts."""
    assignment = pq.read_table(assignment_path(workspace_dir, name), columns=["user_id", "variant"])
    outcomes = read_outcomes(path, assignment)
    target = experiment_dir(workspace_dir, name) / OUTCOMES_FILE
    temporary = target.with_name(f".{target.name}.tmp")
    pq.write_table(outcomes, temporary)
    temporary.replace(target)
    summary: dict[str, dict[str, int]] = {}
    variants = np.asarray(outcomes.column("variant").to_pylist(), dtype=object)
    opened = np.asarray(outcomes.column("opened").fill_null(False).to_pylist(), dtype=bool)
    used = np.asarray(outcomes.column("used").fill_null(False).to_pylist(), dtype=bool)
    for variant in sorted(set(variants.tolist())):
        mask = variants == variant
        summary[variant] = {
            "rows": int(mask.sum()),
            "opened": int(opened[mask].sum()),
            "used": int(used[mask].sum()),
        }
    return summary
