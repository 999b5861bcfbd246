"""The workspace report: one self-contained HTML file of a snapshot's segments and experiments.

``huaxiang report -w DIR --as-of DATE`` writes ``DIR/reports/report-DATE.html``: Plotly charts
with Plotly's JavaScript (from the installed wheel) inlined, so the file opens offline and
sends no request. Sections (labels Chinese first, English beside):

1. lifecycle stages and RFM classes: users and ARPU (365-day spend of valid orders per user);
2. the RFM heatmap (R score × F score: users, with ARPU on hover);
3. the value-grid heatmap (historical spend × recency, from ``value_layer_name``);
4. the AIPL funnel at the date, and the flow rates A→I, I→P, P→L, A→P from the previous snapshot;
5. the lifecycle migration Sankey between the previous snapshot and this one;
6. the fifteen value groups (``value_group_15``) with ARPU, when the tag was built;
7. experiment lift charts: relative lift with its 95 % interval, from saved results.

Segment sizes and ARPU are Ibis aggregates over the snapshot's ``tags.parquet``
(:mod:`huaxiang.analysis.segment_stats`); the figures are those of
:mod:`huaxiang.analysis.charts`, drawn with ``lang="both"`` (the console draws the same ones
in one language).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis

from huaxiang.analysis import charts, segment_stats
from huaxiang.errors import RequestError
from huaxiang.history import aipl_flows, migration_matrix

REPORTS_DIR = "reports"
ARPU_TAG = segment_stats.ARPU_TAG
LIFECYCLE_TAG = segment_stats.LIFECYCLE_TAG
RFM_TAG = segment_stats.RFM_TAG
VALUE_GROUP_TAG = segment_stats.VALUE_GROUP_TAG
_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "WenQuanYi Zen Hei", "PingFang SC", sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 16px 24px; color: #1f2933; }}
h1 {{ font-size: 24px; margin-bottom: 4px; }}
h2 {{ font-size: 19px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 28px; }}
.meta {{ color: #52606d; font-size: 13px; }}
.note {{ background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; font-size: 14px; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 8px 0; }}
td, th {{ border: 1px solid #d0d7de; padding: 3px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style>
<script type="text/javascript">{plotly_js}</script>
</head>
<body>
<h1>{title}</h1>
<p class="meta">{meta}</p>
{sections}
</body>
</html>
"""


@dataclass
class Section:
    """One section of the report: an id, a bilingual title and its HTML (charts, notes, tables)."""

    id: str
    title: str
    parts: list[str] = field(default_factory=list)

    def html(self) -> str:
        return (
            f'<section id="{self.id}"><h2>{html.escape(self.title)}</h2>\n'
            + "\n".join(self.parts)
            + "</section>"
        )


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def plotly_js() -> str:
    """Plotly's minified JavaScript as shipped in the installed wheel (for offline pages)."""
    from importlib import resources

    return resources.files("plotly").joinpath("package_data/plotly.min.js").read_text(encoding="utf-8")


def _figure_html(figure: Any, div_id: str) -> str:
    import plotly.io as pio

    figure.update_layout(
        margin={"l": 60, "r": 30, "t": 60, "b": 50},
        height=420,
        font={"family": "Noto Sans CJK SC, WenQuanYi Zen Hei, sans-serif"},
    )
    return str(
        pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config={"displaylogo": False, "responsive": True},
        )
    )


def _value_names(snapshot: Any, tag: str) -> dict[str, str]:
    """Bilingual labels of an enum tag's values from the manifest (``新客 new``)."""
    return charts.value_labels(snapshot.definition(tag), "both")


_by_segment = segment_stats.by_segment

SEGMENT_TYPES = ("enum", "hierarchical_enum", "boolean")


def segment_summary(workspace_dir: str | Path, tag: str, as_of: dt.date | None = None) -> dict[str, Any]:
    """Users and ARPU per value of an enum or boolean tag, with bilingual labels: the report's data.

    The numbers behind the report's size-and-ARPU charts, for the API and other callers:
    ``{"as_of", "tag", "users", "segments": [{"value", "label", "users", "arpu"}]}`` in the
    tag's declared order (others after, by value). ARPU is the mean 365-day spend, 0 for
    users without a valid order.
    """
    from huaxiang.history import find_snapshot

    snapshot = find_snapshot(Path(workspace_dir), as_of)
    snapshot.require_tag(tag)
    kind = snapshot.definition(tag).get("type")
    if kind is not None and kind not in SEGMENT_TYPES:
        raise RequestError(
            f"tag '{tag}' is a {kind} tag; segments are read from enum or boolean tags "
            f"({', '.join(SEGMENT_TYPES)}), e.g. lifecycle_stage or rfm_class."
        )
    con = ibis.duckdb.connect()
    try:
        tags = con.read_parquet(snapshot.tags_path)
        total = int(tags.count().to_pyarrow().as_py())
        rows = _by_segment(tags, tag)
    finally:
        con.disconnect()
    labels = _value_names(snapshot, tag)
    rank = {value: index for index, value in enumerate(labels)}
    rows.sort(key=lambda row: (rank.get(row["segment"], len(rank)), row["segment"]))
    return {
        "as_of": snapshot.as_of.isoformat(),
        "tag": tag,
        "users": total,
        "segments": [
            {
                "value": row["segment"],
                "label": labels.get(row["segment"], row["segment"]),
                "users": int(row["users"]),
                "arpu": round(float(row["arpu"]), 2),
            }
            for row in rows
        ],
    }


def _value_grid(tags: Any) -> tuple[Any, int]:
    """The value-grid heatmap (bilingual) and the users who never bought."""
    grid = segment_stats.value_grid(tags)
    return charts.value_grid_heatmap(grid, "both"), grid.never


def _aipl_section(root: Path, snapshot: Any, previous: Any, tags: Any) -> Section:
    from huaxiang.history import AIPL_STAGES

    section = Section("aipl", "AIPL 漏斗与流转率 · AIPL funnel and flow rates")
    if "aipl_stage" not in tags.columns:
        section.parts.append(
            _note("本快照没有 aipl_stage 标签 · the aipl_stage tag was not built in this snapshot.")
        )
        return section
    counts = {r["segment"]: int(r["users"]) for r in _by_segment(tags, "aipl_stage")}
    funnel = charts.aipl_funnel({s: counts.get(s, 0) for s in AIPL_STAGES}, snapshot.as_of, "both")
    section.parts.append(_figure_html(funnel, "chart-aipl-funnel"))
    if previous is None:
        section.parts.append(
            _note(
                "只有一个快照, 无法计算流转率 · one snapshot only: build an earlier one "
                "to see the flow rates A→I, I→P, P→L, A→P."
            )
        )
        return section
    flows = aipl_flows(root, previous.as_of, snapshot.as_of)
    if flows is None:
        section.parts.append(
            _note(f"{previous.as_of} 的快照没有 aipl_stage · no aipl_stage on {previous.as_of}.")
        )
        return section
    bars = charts.aipl_flow_rates(flows.flows, previous.as_of, snapshot.as_of, "both")
    section.parts.append(_figure_html(bars, "chart-aipl-flows"))
    return section


def _sankey_section(root: Path, snapshot: Any, previous: Any) -> Section:
    section = Section("migration", "生命周期迁移 · lifecycle migration (Sankey)")
    if previous is None:
        section.parts.append(
            _note(
                "只有一个快照, 无迁移可画 · one snapshot only: build an earlier one to see "
                "how users moved between lifecycle stages."
            )
        )
        return section
    if LIFECYCLE_TAG not in previous.tags or LIFECYCLE_TAG not in snapshot.tags:
        section.parts.append(_note("两个快照都需要 lifecycle_stage · both snapshots need lifecycle_stage."))
        return section
    migration = migration_matrix(root, previous.as_of, snapshot.as_of, LIFECYCLE_TAG)
    figure = charts.migration_sankey(
        migration,
        _value_names(snapshot, LIFECYCLE_TAG),
        previous.as_of,
        snapshot.as_of,
        "both",
        title=f"生命周期迁移 · lifecycle migration {previous.as_of} → {snapshot.as_of}",
    )
    section.parts.append(_figure_html(figure, "chart-migration-sankey"))
    return section


def _experiments_section(root: Path, database_url: str | None) -> Section:
    from huaxiang.analysis.experiments import experiment_store

    section = Section("experiments", "实验效果 · experiment lift")
    metadata = root / ".huaxiang" / "metadata.db"
    if database_url is None and not metadata.exists():
        section.parts.append(_note("还没有实验 · no experiments yet (huaxiang experiment create)."))
        return section
    store = experiment_store(root, database_url)
    try:
        latest = [(name, store.latest_result(name)) for name in store.names()]
    finally:
        store.close()
    results: list[tuple[str, dict[str, Any]]] = [(name, found) for name, found in latest if found]
    if not results:
        section.parts.append(
            _note("还没有实验结果 · no experiment results yet (huaxiang experiment results NAME).")
        )
        return section
    for index, (_name, result) in enumerate(results):
        section.parts.append(
            _figure_html(charts.experiment_lift(result, "both"), f"chart-experiment-{index}")
        )
        for note in result.get("notes", []):
            section.parts.append(_note(note))
    return section


def build_report(
    workspace_dir: str | Path,
    as_of: dt.date | None = None,
    *,
    compare_to: dt.date | None = None,
    output: str | Path | None = None,
    database_url: str | None = None,
) -> Path:
    """Write the report of the snapshot of ``as_of`` (default: the latest); its path.

    Parameters
    ----------
    workspace_dir
        The workspace.
    as_of
        The snapshot to report on.
    compare_to
        The earlier snapshot for the AIPL flows and the migration Sankey (default: the one
        before ``as_of``, if any).
    output
        Where to write the HTML (default: ``DIR/reports/report-DATE.html``).
    database_url
        The metadata database holding experiment results (default: the workspace's).
    """
    import plotly.graph_objects as go  # noqa: F401  (fail early with a clear ImportError)

    from huaxiang.history import find_snapshot, list_snapshots

    root = Path(workspace_dir)
    snapshot = find_snapshot(root, as_of)
    previous = None
    if compare_to is not None:
        if compare_to >= snapshot.as_of:
            raise RequestError(
                f"--compare-to {compare_to} must be before the report's date {snapshot.as_of}."
            )
        previous = find_snapshot(root, compare_to)
    else:
        earlier = [s for s in list_snapshots(root) if s.as_of < snapshot.as_of]
        previous = earlier[-1] if earlier else None
    for required in (LIFECYCLE_TAG, RFM_TAG):
        snapshot.require_tag(required)
    con = ibis.duckdb.connect()
    try:
        tags = con.read_parquet(snapshot.tags_path)
        users = int(tags.count().to_pyarrow().as_py())
        sections = []
        overview = Section(
            "segments", "生命周期与RFM分类: 人数与ARPU · lifecycle stages and RFM classes: users and ARPU"
        )
        for tag, title in (
            (LIFECYCLE_TAG, "生命周期 · lifecycle stages"),
            (RFM_TAG, "RFM 八类 · RFM classes"),
        ):
            labels = _value_names(snapshot, tag)
            overview.parts.append(
                _figure_html(
                    charts.segment_sizes(_by_segment(tags, tag), labels, title, "both", list(labels)),
                    f"chart-sizes-{tag}",
                )
            )
        sections.append(overview)
        rfm = Section("rfm", "RFM 热力图 · RFM heatmap")
        if {"rfm_r_score", "rfm_f_score", ARPU_TAG} <= set(tags.columns):
            rfm.parts.append(
                _figure_html(charts.rfm_heatmap(segment_stats.rfm_cells(tags), "both"), "chart-rfm-heatmap")
            )
        else:
            rfm.parts.append(
                _note("本快照没有 RFM 得分 · the RFM score tags were not built in this snapshot.")
            )
        sections.append(rfm)
        grid = Section("value-grid", "价值分层热力图 · value-grid heatmap")
        if {"value_layer", "value_layer_name"} <= set(tags.columns):
            grid.parts.append(_figure_html(_value_grid(tags)[0], "chart-value-grid"))
        else:
            grid.parts.append(_note("本快照没有 value_layer 标签 · the value_layer tags were not built."))
        sections.append(grid)
        sections.append(_aipl_section(root, snapshot, previous, tags))
        sections.append(_sankey_section(root, snapshot, previous))
        groups = Section("value-groups", "15大价值人群与ARPU · fifteen value groups and ARPU")
        if VALUE_GROUP_TAG in tags.columns:
            labels = _value_names(snapshot, VALUE_GROUP_TAG)
            rows = _by_segment(tags, VALUE_GROUP_TAG)
            order = sorted({r["segment"] for r in rows}, key=_group_order)
            groups.parts.append(
                _figure_html(
                    charts.segment_sizes(rows, labels, "15大价值人群 · value groups L0-L14", "both", order),
                    "chart-value-groups",
                )
            )
        else:
            groups.parts.append(
                _note(
                    f"本快照未构建 {VALUE_GROUP_TAG} 标签 · the {VALUE_GROUP_TAG} tag was not built in "
                    "this snapshot "
                    "(add it to the catalog and rebuild)."
                )
            )
        sections.append(groups)
    finally:
        con.disconnect()
    sections.append(_experiments_section(root, database_url))
    title = f"用户画像报告 · huaxiang report — {root.resolve().name} @ {snapshot.as_of}"
    meta = (
        f"快照 snapshot {snapshot.as_of} · 用户 users {users:,}"
        + (f" · 对比 compared with {previous.as_of}" if previous else "")
        + f" · 生成 generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )
    page = _PAGE.format(
        title=html.escape(title),
        meta=html.escape(meta),
        plotly_js=plotly_js(),
        sections="\n".join(s.html() for s in sections),
    )
    target = Path(output) if output else root / REPORTS_DIR / f"report-{snapshot.as_of}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    return target


def _group_order(value: str) -> tuple[int, str]:
    match = re.match(r"^L(\d+)", value)
    return (int(match.group(1)), value) if match else (10_000, value)
