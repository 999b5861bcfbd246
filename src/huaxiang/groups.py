"""Explain and compare groupings of a snapshot: the evaluation report and connected components vs k-means.

:func:`group_report` reads a snapshot's grouping tag (``value_group_15`` by default, or
any enum tag such as ``rfm_class``), recomputes the value-group features of the same
date from the workspace data, lets the engine aggregate users and value per group and
combination of bands, and returns the :class:`~huaxiang.segment.group_report.GroupReport`.
:func:`compare_groupings` fits both segmenters on the same grid and reports each with
the adjusted Rand index between them (and against a planted truth when given).
Nothing here reads per-user rows into Python: only grids and contingency tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from huaxiang.config import CONFIG_FILE, load_config
from huaxiang.engine.build import connect, drop_empty_columns, read_tables
from huaxiang.engine.compile import cut_tables
from huaxiang.errors import NotFoundError, did_you_mean
from huaxiang.history import Snapshot, find_snapshot
from huaxiang.segment.group_report import GroupReport, PersonaNames, evaluate_grid
from huaxiang.segment.value_features import FEATURES, NOMINAL, ValueFeatures, value_features
from huaxiang.segment.value_group_fit import FittedGrid, adjusted_rand_index, fit_grid
from huaxiang.segment.value_groups import N_GROUPS

DEFAULT_TAG = "value_group_15"
#: The planted truth the sample shop writes (``huaxiang sample``), used by ``compare`` when present.
SAMPLE_TRUTH = Path("sources") / "truth.parquet"


@contextmanager
def _workspace_tables(root: Path, as_of: dt.date) -> Iterator[tuple[Any, dict[str, ir.Table]]]:
    """The workspace's canonical tables cut at ``as_of`` on a DuckDB connection (closed after)."""
    config = load_config(root) if (root / CONFIG_FILE).is_file() else None
    con = connect(config, root)
    try:
        present, _ = drop_empty_columns(con, read_tables(con, root / "data"), root / "data")
        yield con, cut_tables(present, as_of)
    finally:
        con.disconnect()


def _fitted_settings(snapshot: Snapshot) -> dict[str, Any]:
    """The value-group fit the snapshot's manifest records (window, bands, features), if any."""
    for name, rows in snapshot.manifest.get("models", {}).items():
        if name.startswith("value_groups") and name.endswith(".fit") and rows:
            return dict(rows[0])
    return {}


def _features(tables: dict[str, ir.Table], snapshot: Snapshot) -> ValueFeatures:
    fit = _fitted_settings(snapshot)
    names = str(fit["features"]).split(",") if fit.get("features") else list(FEATURES)
    return value_features(
        tables, snapshot.as_of, window_days=int(fit.get("window_days", 365)), bands=int(fit.get("bands", 4)),
        features=names,
    )


def group_report(
    workspace_dir: str | Path,
    as_of: dt.date | None = None,
    *,
    tag: str = DEFAULT_TAG,
    personas: PersonaNames | None = None,
) -> GroupReport:
    """The evaluation report of the grouping ``tag`` in the snapshot of ``as_of`` (default: latest).

    Parameters
    ----------
    workspace_dir
        The workspace folder.
    as_of
        The snapshot date; the latest snapshot without it.
    tag
        An enum tag of the snapshot whose values are the groups (``value_group_15``,
        ``rfm_class``, ``target_group_10`` ...). Its declared values give the order in
        which ARPU should fall; without declared values, the natural order of the labels.
    personas
        Persona names of the groups (:func:`huaxiang.segment.group_report.load_personas`).

    Raises
    ------
    NotFoundError
        No such snapshot, or the snapshot has no column ``tag``.
    MissingInputError
        The data has too few of the features.
    """
    root = Path(workspace_dir)
    snapshot = find_snapshot(root, as_of)
    columns = pq.read_schema(snapshot.tags_path).names
    if tag not in columns:
        raise NotFoundError(
            f"the snapshot of {snapshot.as_of} has no tag {tag!r}.{did_you_mean(tag, columns)} "
            f"Build it first (value_groups.yaml of the standard catalog), or name another enum tag."
        )
    definition = snapshot.manifest.get("definitions", {}).get(tag, {})
    order = [str(entry["value"]) for entry in definition.get("values", [])] or None
    with _workspace_tables(root, snapshot.as_of) as (con, tables):
        found = _features(tables, snapshot)
        groups = con.read_parquet(snapshot.tags_path).select("user_id", group=ibis._[tag].cast("string"))
        joined = found.table.left_join(groups, "user_id")
        cells = joined.group_by(["group", *found.present]).aggregate(
            users=joined.count(), value=joined.value.sum()
        )
        frame = con.to_pyarrow(cells).to_pandas()
    return evaluate_grid(
        frame, found.present, measure=found.measure, order=order, personas=personas,
        missing_features=found.missing,
    )


@dataclass(frozen=True)
class GroupComparison:
    """Connected components and k-means on the same grid: both reports and their agreement."""

    connected: GroupReport
    kmeans: GroupReport
    ari_between: float
    """Adjusted Rand index between the two groupings, over users."""
    ari_truth: dict[str, float]
    """Adjusted Rand index of each grouping against the planted column(s) of ``truth``, when given."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "connected": self.connected.to_dict(),
            "kmeans": self.kmeans.to_dict(),
            "ari_between": self.ari_between,
            "ari_truth": self.ari_truth,
        }


def _mapping(fitted: FittedGrid, features: tuple[str, ...], name: str) -> ir.Table:
    columns = fitted.cells[[*features, "group"]].rename(columns={"group": name})
    arrow = pa.Table.from_pandas(columns, preserve_index=False)
    return ibis.memtable(arrow.cast(pa.schema([(c, pa.string()) for c in arrow.column_names])))


def compare_groupings(
    workspace_dir: str | Path,
    as_of: dt.date | None = None,
    *,
    n_groups: int = N_GROUPS,
    random_state: int = 0,
    truth: str | Path | None = None,
    truth_column: str = "persona",
) -> GroupComparison:
    """Fit connected components and k-means on the grid of the snapshot's date and compare them.

    Parameters
    ----------
    workspace_dir, as_of
        The workspace and the snapshot date (the latest by default); the snapshot's
        value-group settings (window, bands, features) are used when it has them.
    n_groups
        Groups of each method.
    random_state
        Seed of k-means.
    truth
        A Parquet file with ``user_id`` and ``truth_column`` (the sample shop's
        ``sources/truth.parquet``, used by default when it exists): the ARI of each
        grouping against it is reported.
    truth_column
        The planted grouping in ``truth``.
    """
    root = Path(workspace_dir)
    snapshot = find_snapshot(root, as_of)
    if truth is None and (root / SAMPLE_TRUTH).is_file():
        truth = root / SAMPLE_TRUTH
    fit = _fitted_settings(snapshot)
    with _workspace_tables(root, snapshot.as_of) as (con, tables):
        found = _features(tables, snapshot)
        grid = con.to_pyarrow(found.grid()).to_pandas()
        options: dict[str, Any] = {"n_groups": n_groups, "random_state": random_state}
        same = fit.get("method") == "connected_components" and fit.get("n_groups") == n_groups
        if same and "tolerance" in fit:
            options["tolerance"] = float(fit["tolerance"])  # the snapshot's fit, reproduced
        connected = fit_grid(grid, found.present, found.levels, sorted(NOMINAL), **options)
        kmeans = fit_grid(grid, found.present, found.levels, sorted(NOMINAL), method="kmeans", **options)
        both = connected.cells.merge(
            kmeans.cells[[*found.present, "group"]], on=list(found.present), suffixes=("", "_kmeans")
        )
        counts = both.pivot_table(
            index="group", columns="group_kmeans", values="users", aggfunc="sum", fill_value=0
        )
        between = adjusted_rand_index(np.asarray(counts.to_numpy()))
        scores: dict[str, float] = {}
        if truth is not None:
            planted = con.read_parquet(Path(truth))
            planted = planted.select("user_id", planted=planted[truth_column].cast("string"))
            keys = list(found.present)
            users = found.table.inner_join(_mapping(connected, found.present, "connected"), keys)
            users = users.inner_join(_mapping(kmeans, found.present, "kmeans"), keys)
            users = users.inner_join(planted, "user_id")
            for method in ("connected", "kmeans"):
                counts = con.to_pyarrow(users.group_by([method, "planted"]).aggregate(users=users.count()))
                table = counts.to_pandas().pivot_table(
                    index=method, columns="planted", values="users", aggfunc="sum", fill_value=0
                )
                scores[method] = round(adjusted_rand_index(np.asarray(table.to_numpy())), 6)
    return GroupComparison(
        connected=evaluate_grid(connected.cells, found.present, measure=found.measure,
                                missing_features=found.missing),
        kmeans=evaluate_grid(
            kmeans.cells, found.present, measure=found.measure, missing_features=found.missing
        ),
        ari_between=round(between, 6),
        ari_truth=scores,
    )


__all__ = ["DEFAULT_TAG", "GroupComparison", "compare_groupings", "group_report"]
