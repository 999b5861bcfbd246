"""Results of an experiment: metrics per variant against control, per segment, and the funnel.

Per user, within ``[touch time, touch time + window)`` (and before the data ends):

- ``conversion`` 转化率: share of users with at least one valid order (not after-sale, amount > 0);
- ``gmv_per_user`` 人均GMV: gross amount of the orders placed, after-sale ones included, per user;
- ``arpu`` ARPU(净收入): amount of valid orders per user, i.e. net of orders that went to
  after-sale, so a coupon that only brings returns shows here and not in GMV;
- ``order_count`` 人均订单数: valid orders per user;
- ``open_rate`` 打开率 / ``use_rate`` 核销率: share of users with a recorded outcome who
  opened the touch / used the coupon (imported outcomes, or the campaign's ``touches`` rows).

Rates use the two-proportion z test, means Welch's t test (:mod:`huaxiang.analysis.stats`).
Every per-user quantity is computed in Ibis; one row per variant (and segment) comes back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from huaxiang.analysis import stats
from huaxiang.analysis.experiments import (
    OUTCOMES_FILE,
    ExperimentDefinition,
    assignment_path,
    experiment_dir,
    experiment_store,
    get_experiment,
)
from huaxiang.errors import NotFoundError, RequestError, did_you_mean

METRICS: dict[str, tuple[str, str]] = {
    "conversion": ("rate", "转化率 conversion"),
    "gmv_per_user": ("mean", "人均GMV GMV per user"),
    "arpu": ("mean", "ARPU(净收入) ARPU, net"),
    "order_count": ("mean", "人均订单数 orders per user"),
    "open_rate": ("rate", "打开率 open rate"),
    "use_rate": ("rate", "核销率 use rate"),
}
FUNNEL_STAGES: tuple[tuple[str, str], ...] = (
    ("reached", "触达 reached"),
    ("return_visit", "回访 return visit"),
    ("favorite_cart", "收藏/加购 favorite / cart"),
    ("order", "下单 order"),
)
VISIT_EVENTS = ("visit", "view")
ENGAGE_EVENTS = ("favorite", "cart")
CATEGORICAL = ("enum", "hierarchical_enum", "boolean")
NONE_SEGMENT = "(none)"


@dataclass(frozen=True)
class MetricResult:
    """One metric of one variant: its value and, against control, the comparison."""

    metric: str
    label: str
    variant: str
    value: float | None
    users: int
    comparison: stats.Comparison | None = None
    interval: tuple[float, float] | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["comparison"] = self.comparison.to_dict() if self.comparison else None
        return data


@dataclass(frozen=True)
class FunnelRow:
    """Users of one variant at each funnel stage (each stage includes the ones before it)."""

    variant: str
    counts: dict[str, int]

    def rates(self) -> dict[str, float | None]:
        """Share of the previous stage reaching each stage after the first."""
        result: dict[str, float | None] = {}
        names = [name for name, _ in FUNNEL_STAGES]
        for before, after in zip(names, names[1:], strict=False):
            result[after] = self.counts[after] / self.counts[before] if self.counts[before] else None
        return result


@dataclass
class ExperimentResults:
    """Everything :func:`experiment_results` computes for one experiment."""

    name: str
    control: str
    treatments: list[str]
    touch_date: str
    window_days: int
    data_end: str
    window_complete: bool
    sizes: dict[str, int]
    metrics: list[MetricResult]
    funnel: list[FunnelRow]
    segment_tag: str | None = None
    segment_as_of: str | None = None
    segments: dict[str, list[MetricResult]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metric(self, metric: str, variant: str, segment: str | None = None) -> MetricResult:
        rows = self.metrics if segment is None else self.segments[segment]
        for row in rows:
            if row.metric == metric and row.variant == variant:
                return row
        raise KeyError(f"no result for {metric} / {variant}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "control": self.control,
            "treatments": self.treatments,
            "touch_date": self.touch_date,
            "window_days": self.window_days,
            "data_end": self.data_end,
            "window_complete": self.window_complete,
            "sizes": self.sizes,
            "metrics": [m.to_dict() for m in self.metrics],
            "funnel": [{"variant": f.variant, "counts": f.counts, "rates": f.rates()} for f in self.funnel],
            "segment_tag": self.segment_tag,
            "segment_as_of": self.segment_as_of,
            "segments": {k: [m.to_dict() for m in v] for k, v in self.segments.items()},
            "notes": self.notes,
        }


def _flag(condition: ir.BooleanValue) -> ir.IntegerValue:
    return ibis.ifelse(condition, 1, 0)


def _users(con: Any, root: Path, definition: ExperimentDefinition, end: dt.datetime) -> tuple[ir.Table, bool]:
    """One row per assigned user: variant and the window's order, GMV, net and funnel flags;
    and whether touch outcomes (opened / used) are known."""
    from huaxiang.workspace import Workspace

    workspace = Workspace(root)
    assignment = con.read_parquet(assignment_path(root, definition.name))
    window = ibis.interval(days=definition.window_days)
    end_literal = ibis.literal(end, type="timestamp")

    orders = con.read_parquet(workspace.table_path("orders"))
    joined = orders.join(assignment, "user_id")
    joined = joined.filter(
        joined.order_time >= joined.touch_time,
        joined.order_time < joined.touch_time + window,
        joined.order_time < end_literal,
    )
    amount = joined.amount.cast("float64")
    valid = ~joined.is_after_sale.fill_null(False) & (joined.amount > 0)
    per_user_orders = joined.group_by("user_id").aggregate(
        window_orders=_flag(valid).sum(),
        window_gmv=ibis.ifelse(joined.amount > 0, amount, 0.0).sum(),
        window_net=ibis.ifelse(valid, amount, 0.0).sum(),
    )
    users = assignment.left_join(per_user_orders, "user_id").select(
        "user_id",
        "variant",
        "touch_time",
        window_orders=ibis.coalesce(ibis._.window_orders, 0),
        window_gmv=ibis.coalesce(ibis._.window_gmv, 0.0),
        window_net=ibis.coalesce(ibis._.window_net, 0.0),
    )
    if "events" in workspace.tables():
        events = con.read_parquet(workspace.table_path("events"))
        seen = events.join(assignment, "user_id")
        seen = seen.filter(
            seen.event_time >= seen.touch_time,
            seen.event_time < seen.touch_time + window,
            seen.event_time < end_literal,
        )
        per_user_events = seen.group_by("user_id").aggregate(
            visited=_flag(seen.event_type.isin(VISIT_EVENTS)).max(),
            engaged=_flag(seen.event_type.isin(ENGAGE_EVENTS)).max(),
        )
        users = users.left_join(per_user_events, "user_id").select(
            *[users[c] for c in users.columns],
            visited=ibis.coalesce(ibis._.visited, 0),
            engaged=ibis.coalesce(ibis._.engaged, 0),
        )
    else:
        users = users.mutate(visited=ibis.literal(0), engaged=ibis.literal(0))
    outcomes = _outcomes(con, root, definition)
    if outcomes is not None:
        users = users.left_join(outcomes, "user_id").select(
            *[users[c] for c in users.columns], opened=ibis._.opened, used=ibis._.used
        )
    else:
        users = users.mutate(opened=ibis.null("boolean"), used=ibis.null("boolean"))
    return users, outcomes is not None


def _outcomes(con: Any, root: Path, definition: ExperimentDefinition) -> ir.Table | None:
    imported = experiment_dir(root, definition.name) / OUTCOMES_FILE
    if imported.is_file():
        table = con.read_parquet(imported)
        return table.select("user_id", "opened", "used")
    if definition.source == "touches":
        from huaxiang.workspace import Workspace

        touches = con.read_parquet(Workspace(root).table_path("touches"))
        if not {"opened", "used"} <= set(touches.columns):
            return None
        rows = touches.filter(touches.campaign_id == definition.campaign_id)
        return rows.group_by("user_id").aggregate(opened=rows.opened.max(), used=rows.used.max())
    return None


def _aggregate(users: ir.Table, keys: list[str]) -> list[dict[str, Any]]:
    converted = users.window_orders > 0
    aggregated = users.group_by(keys).aggregate(
        users=users.count(),
        converted=_flag(converted).sum(),
        gmv_mean=users.window_gmv.mean(),
        gmv_var=users.window_gmv.var(how="sample"),
        net_mean=users.window_net.mean(),
        net_var=users.window_net.var(how="sample"),
        orders_mean=users.window_orders.cast("float64").mean(),
        orders_var=users.window_orders.cast("float64").var(how="sample"),
        open_known=_flag(users.opened.notnull()).sum(),
        opened=_flag(users.opened.fill_null(False)).sum(),
        use_known=_flag(users.used.notnull()).sum(),
        used=_flag(users.used.fill_null(False)).sum(),
        f_visit=users.visited.sum(),
        f_engage=_flag((users.visited > 0) & (users.engaged > 0)).sum(),
        f_order=_flag((users.visited > 0) & (users.engaged > 0) & converted).sum(),
    )
    rows: list[dict[str, Any]] = aggregated.to_pyarrow().to_pylist()
    return rows


_MEANS = {"gmv_per_user": "gmv", "arpu": "net", "order_count": "orders"}
_RATES = {
    "conversion": ("converted", "users"),
    "open_rate": ("opened", "open_known"),
    "use_rate": ("used", "use_known"),
}


def _compare(
    definition: ExperimentDefinition, rows: dict[str, dict[str, Any]], metrics: list[str]
) -> list[MetricResult]:
    """Every metric of every variant, the treatments against control."""
    results: list[MetricResult] = []
    control = rows.get(definition.control)
    for metric in metrics:
        kind, label = METRICS[metric]
        for variant in [v.name for v in definition.variants]:
            row = rows.get(variant)
            if row is None:
                results.append(MetricResult(metric, label, variant, None, 0, note="no users"))
                continue
            if kind == "rate":
                hits, base = _RATES[metric]
                results.append(
                    _rate_result(
                        metric, label, variant, row, control, hits, base, variant == definition.control
                    )
                )
            else:
                results.append(
                    _mean_result(
                        metric, label, variant, row, control, _MEANS[metric], variant == definition.control
                    )
                )
    return results


def _rate_result(
    metric: str,
    label: str,
    variant: str,
    row: dict[str, Any],
    control: dict[str, Any] | None,
    hits: str,
    base: str,
    is_control: bool,
) -> MetricResult:
    n, k = int(row[base]), int(row[hits])
    if n == 0:
        return MetricResult(metric, label, variant, None, 0, note="no recorded outcome")
    value = k / n
    interval = stats.proportion_interval(k, n)
    if is_control:
        return MetricResult(metric, label, variant, value, n, interval=interval)
    if control is None or int(control[base]) == 0:
        return MetricResult(
            metric,
            label,
            variant,
            value,
            n,
            interval=interval,
            note="control has no recorded outcome (held out): no comparison",
        )
    comparison = stats.two_proportion_ztest(k, n, int(control[hits]), int(control[base]))
    return MetricResult(
        metric,
        label,
        variant,
        value,
        n,
        comparison=comparison,
        interval=(comparison.ci_low, comparison.ci_high),
    )


def _mean_result(
    metric: str,
    label: str,
    variant: str,
    row: dict[str, Any],
    control: dict[str, Any] | None,
    prefix: str,
    is_control: bool,
) -> MetricResult:
    n = int(row["users"])
    value = float(row[f"{prefix}_mean"])
    if is_control or control is None:
        return MetricResult(metric, label, variant, value, n)
    if n < 2 or int(control["users"]) < 2:
        return MetricResult(metric, label, variant, value, n, note="fewer than 2 users in a group: no test")
    comparison = stats.welch_ttest(
        value,
        float(row[f"{prefix}_var"] or 0.0),
        n,
        float(control[f"{prefix}_mean"]),
        float(control[f"{prefix}_var"] or 0.0),
        int(control["users"]),
    )
    return MetricResult(
        metric,
        label,
        variant,
        value,
        n,
        comparison=comparison,
        interval=(comparison.ci_low, comparison.ci_high),
    )


def _data_end(con: Any, root: Path) -> dt.datetime:
    from huaxiang.workspace import Workspace

    workspace = Workspace(root)
    ends = [con.read_parquet(workspace.table_path("orders")).order_time.max().to_pyarrow().as_py()]
    if "events" in workspace.tables():
        ends.append(con.read_parquet(workspace.table_path("events")).event_time.max().to_pyarrow().as_py())
    found = [end for end in ends if end is not None]
    if not found:
        raise RequestError("the workspace has no orders, so an experiment has no outcome to read.")
    return max(found)


def segment_snapshot(root: Path, tag: str, as_of: dt.date | None, touch_date: dt.date) -> Any:
    """The snapshot for a per-segment breakdown: ``as_of``, else the latest on or before the
    touch date (segments as they were when the users were reached), else the earliest."""
    from huaxiang.history import find_snapshot, list_snapshots

    if as_of is not None:
        snapshot = find_snapshot(root, as_of)
    else:
        snapshots = list_snapshots(root)
        if not snapshots:
            raise NotFoundError(f"no snapshots in {root}; build one to break results down by a tag.")
        before = [s for s in snapshots if s.as_of <= touch_date]
        snapshot = before[-1] if before else snapshots[0]
    snapshot.require_tag(tag)
    kind = snapshot.tag_type(tag)
    if kind not in CATEGORICAL:
        allowed = [t for t in snapshot.tags if snapshot.tag_type(t) in CATEGORICAL]
        raise RequestError(
            f"a per-segment breakdown needs an enum or boolean tag; '{tag}' is {kind}."
            f"{did_you_mean(tag, allowed)} Tags that qualify include: {', '.join(allowed[:12])}."
        )
    return snapshot


def experiment_results(
    workspace_dir: str | Path,
    name: str,
    *,
    by: str | None = None,
    segment_as_of: dt.date | None = None,
    until: dt.date | None = None,
    save: bool = True,
    database_url: str | None = None,
) -> ExperimentResults:
    """Compute an experiment's results (and save them for reports).

    Parameters
    ----------
    workspace_dir
        The workspace (canonical ``orders``, optionally ``events`` and ``touches``).
    name
        A saved and assigned experiment.
    by
        An enum or boolean tag: adds the per-segment breakdown.
    segment_as_of
        The snapshot the segments are read from (default: the latest on or before the touch date).
    until
        Count outcomes up to this day (inclusive); default: up to the end of the data.
    save
        Store the result in the metadata database (the report draws its lift charts from it).

    Raises
    ------
    huaxiang.errors.RequestError
        The experiment is not assigned, ``until`` is before the touch date, or the data ends before it.
    """
    root = Path(workspace_dir)
    definition, _ = get_experiment(root, name, database_url=database_url)
    touch = dt.datetime.combine(definition.touch_date, dt.time())
    con = ibis.duckdb.connect()
    try:
        data_end = _data_end(con, root)
        if until is not None and until < definition.touch_date:
            raise RequestError(
                f"the results window ends on {until}, before the touch date {definition.touch_date} of "
                f"experiment '{name}'; give --until on or after the touch date."
            )
        if data_end < touch:
            raise RequestError(
                f"the data ends at {data_end:%Y-%m-%d %H:%M}, before the touch date "
                f"{definition.touch_date} of "
                f"experiment '{name}': there are no outcomes yet. Ingest newer orders first."
            )
        end = data_end + dt.timedelta(microseconds=1)
        if until is not None:
            end = min(end, dt.datetime.combine(until + dt.timedelta(days=1), dt.time()))
        window_end = touch + dt.timedelta(days=definition.window_days)
        users, has_outcomes = _users(con, root, definition, end)
        metrics: list[str] = list(definition.metrics)
        if has_outcomes:  # imported (or campaign) outcomes add the open and use rates
            metrics += [m for m in ("open_rate", "use_rate") if m not in metrics]
        overall = {row["variant"]: row for row in _aggregate(users, ["variant"])}
        result = ExperimentResults(
            name=name,
            control=definition.control,
            treatments=definition.treatments,
            touch_date=definition.touch_date.isoformat(),
            window_days=definition.window_days,
            data_end=(end - dt.timedelta(microseconds=1)).isoformat(sep=" "),
            window_complete=window_end <= end,
            sizes={v.name: int(overall.get(v.name, {}).get("users", 0)) for v in definition.variants},
            metrics=_compare(definition, overall, metrics),
            funnel=[FunnelRow(v.name, _funnel_counts(overall.get(v.name))) for v in definition.variants],
        )
        if not result.window_complete:
            result.notes.append(
                f"the attribution window runs to {window_end:%Y-%m-%d} but outcomes are counted only up "
                f"to {result.data_end[:10]}: later outcomes are missing."
            )
        if by is not None:
            snapshot = segment_snapshot(root, by, segment_as_of, definition.touch_date)
            tags = con.read_parquet(snapshot.tags_path).select("user_id", segment=ibis._[by].cast("string"))
            segmented = users.left_join(tags, "user_id").select(
                *[users[c] for c in users.columns], segment=ibis.coalesce(ibis._.segment, NONE_SEGMENT)
            )
            grouped: dict[str, dict[str, dict[str, Any]]] = {}
            for row in _aggregate(segmented, ["segment", "variant"]):
                grouped.setdefault(row["segment"], {})[row["variant"]] = row
            result.segment_tag, result.segment_as_of = by, snapshot.as_of.isoformat()
            result.segments = {seg: _compare(definition, grouped[seg], metrics) for seg in sorted(grouped)}
    finally:
        con.disconnect()
    if save:
        store = experiment_store(root, database_url)
        try:
            store.save_result(name, result.to_dict())
        finally:
            store.close()
    return result


def _funnel_counts(row: dict[str, Any] | None) -> dict[str, int]:
    if row is None:
        return {name: 0 for name, _ in FUNNEL_STAGES}
    return {
        "reached": int(row["users"]),
        "return_visit": int(row["f_visit"] or 0),
        "favorite_cart": int(row["f_engage"] or 0),
        "order": int(row["f_order"] or 0),
    }


def check_metrics(metrics: list[str]) -> list[str]:
    """Metric names checked against :data:`METRICS` (an unknown one names the allowed ones)."""
    for metric in metrics:
        if metric not in METRICS:
            raise RequestError(
                f"unknown metric '{metric}'.{did_you_mean(metric, METRICS)} Metrics: {', '.join(METRICS)}."
            )
    return metrics
