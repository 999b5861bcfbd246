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

Segment sizes and ARPU are Ibis aggregates over the snapshot's ``tags.parquet``.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis

from huaxiang.errors import RequestError

REPORTS_DIR = "reports"
ARPU_TAG = "monetary_365d"
LIFECYCLE_TAG = "lifecycle_stage"
RFM_TAG = "rfm_class"
VALUE_GROUP_TAG = "value_group_15"
AIPL_LABELS = {
    "awareness": "认知 A awareness",
    "interest": "兴趣 I interest",
    "purchase": "购买 P purchase",
    "loyalty": "忠诚 L loyalty",
}
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
    labels = {}
    for item in snapshot.definition(tag).get("values", []):
        zh, en = item.get("name_zh"), item.get("name_en")
        value = str(item["value"])
        parts = [p for p in (zh if zh and zh != value else None, value if not zh else None, en) if p]
        labels[value] = f"{zh or value} {en}" if en and zh else (" ".join(parts) or value)
    return labels


def _by_segment(tags: Any, tag: str) -> list[dict[str, Any]]:
    """Users and ARPU (mean 365-day spend, 0 for users without a valid order) per value of ``tag``."""
    spend = tags[ARPU_TAG].cast("float64").fill_null(0.0) if ARPU_TAG in tags.columns else ibis.literal(0.0)
    members = tags.select(segment=tags[tag].cast("string"), spend=spend).filter(ibis._.segment.notnull())
    grouped = members.group_by("segment").aggregate(users=members.count(), arpu=members.spend.mean())
    rows: list[dict[str, Any]] = grouped.order_by("segment").to_pyarrow().to_pylist()
    return rows


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


def _sizes_figure(rows: list[dict[str, Any]], labels: dict[str, str], title: str, order: list[str]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ranked = sorted(rows, key=lambda r: order.index(r["segment"]) if r["segment"] in order else len(order))
    names = [labels.get(r["segment"], r["segment"]) for r in ranked]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Bar(x=names, y=[r["users"] for r in ranked], name="用户数 users"), secondary_y=False)
    figure.add_trace(
        go.Scatter(
            x=names, y=[round(r["arpu"], 2) for r in ranked], name="ARPU (近365天 365d)", mode="lines+markers"
        ),
        secondary_y=True,
    )
    figure.update_layout(title=title, legend={"orientation": "h", "y": -0.25})
    figure.update_yaxes(title_text="用户数 users", secondary_y=False)
    figure.update_yaxes(title_text="ARPU (元 CNY)", secondary_y=True)
    return figure


def _rfm_heatmap(tags: Any) -> Any:
    import plotly.graph_objects as go

    scored = tags.filter(tags.rfm_r_score.notnull() & tags.rfm_f_score.notnull()).select(
        r=tags.rfm_r_score, f=tags.rfm_f_score, spend=tags[ARPU_TAG].cast("float64")
    )
    cells = (
        scored.group_by(["r", "f"])
        .aggregate(users=scored.count(), arpu=scored.spend.mean())
        .to_pyarrow()
        .to_pylist()
    )
    users = [[0] * 5 for _ in range(5)]
    arpu = [[0.0] * 5 for _ in range(5)]
    for cell in cells:
        users[int(cell["f"]) - 1][int(cell["r"]) - 1] = int(cell["users"])
        arpu[int(cell["f"]) - 1][int(cell["r"]) - 1] = round(float(cell["arpu"] or 0.0), 2)
    figure = go.Figure(
        go.Heatmap(
            z=users,
            x=[f"R{i}" for i in range(1, 6)],
            y=[f"F{i}" for i in range(1, 6)],
            customdata=arpu,
            text=users,
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": "用户 users"},
            hovertemplate="%{x} %{y}<br>用户 users: %{z}<br>ARPU: %{customdata}<extra></extra>",
        )
    )
    figure.update_layout(
        title="RFM 热力图: R得分 × F得分 · RFM heatmap: R score × F score",
        xaxis_title="R 得分 recency score",
        yaxis_title="F 得分 frequency score",
    )
    return figure


_LAYER = re.compile(r"^L(\d+) (\S+?)·(\S+) ")


def _value_grid(tags: Any) -> tuple[Any, int]:
    import plotly.graph_objects as go

    layers = tags.select(layer=tags.value_layer, name=tags.value_layer_name)
    rows = (
        layers.group_by(["layer", "name"])
        .aggregate(users=layers.count())
        .order_by("layer")
        .to_pyarrow()
        .to_pylist()
    )
    spends: list[str] = []
    recencies: list[str] = []
    cells: dict[tuple[str, str], int] = {}
    never = 0
    for row in rows:
        match = _LAYER.match(str(row["name"] or ""))
        if match is None:
            never += int(row["users"])
            continue
        spend, recency = match.group(2), match.group(3)
        if spend not in spends:
            spends.append(spend)
        if recency not in recencies:
            recencies.append(recency)
        cells[(spend, recency)] = cells.get((spend, recency), 0) + int(row["users"])
    z = [[cells.get((s, r), 0) for r in recencies] for s in spends]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=recencies,
            y=spends,
            text=z,
            texttemplate="%{text}",
            colorscale="Greens",
            colorbar={"title": "用户 users"},
        )
    )
    figure.update_layout(
        title="价值分层: 历史消费 × 最近购买 · value grid: spend × recency "
        f"(L0 未购 never bought: {never:,})",
        xaxis_title="最近购买 recency",
        yaxis_title="历史消费 historical spend (元)",
    )
    return figure, never


def _aipl_section(root: Path, snapshot: Any, previous: Any, tags: Any) -> Section:
    import plotly.graph_objects as go

    from huaxiang.history import AIPL_STAGES, diff

    section = Section("aipl", "AIPL 漏斗与流转率 · AIPL funnel and flow rates")
    if "aipl_stage" not in tags.columns:
        section.parts.append(
            _note("本快照没有 aipl_stage 标签 · the aipl_stage tag was not built in this snapshot.")
        )
        return section
    counts = {r["segment"]: r["users"] for r in _by_segment(tags, "aipl_stage")}
    figure = go.Figure(
        go.Funnel(
            y=[AIPL_LABELS[s] for s in AIPL_STAGES],
            x=[int(counts.get(s, 0)) for s in AIPL_STAGES],
            textinfo="value+percent total",
        )
    )
    figure.update_layout(title=f"AIPL 各阶段人数 · users per AIPL stage ({snapshot.as_of})")
    section.parts.append(_figure_html(figure, "chart-aipl-funnel"))
    if previous is None:
        section.parts.append(
            _note(
                "只有一个快照, 无法计算流转率 · one snapshot only: build an earlier one "
                "to see the flow rates A→I, I→P, P→L, A→P."
            )
        )
        return section
    flows = diff(root, previous.as_of, snapshot.as_of).aipl
    if flows is None:
        section.parts.append(
            _note(f"{previous.as_of} 的快照没有 aipl_stage · no aipl_stage on {previous.as_of}.")
        )
        return section
    bars = go.Figure(
        go.Bar(
            x=[f.name for f in flows.flows],
            y=[round((f.rate or 0.0) * 100, 2) for f in flows.flows],
            text=[f"{(f.rate or 0):.1%} ({f.moved:,}/{f.users:,})" for f in flows.flows],
            textposition="outside",
        )
    )
    bars.update_layout(
        title=f"AIPL 流转率 · flow rates {previous.as_of} → {snapshot.as_of}", yaxis_title="流转率 rate (%)"
    )
    section.parts.append(_figure_html(bars, "chart-aipl-flows"))
    return section


def _sankey_section(root: Path, snapshot: Any, previous: Any) -> Section:
    import plotly.graph_objects as go

    from huaxiang.history import diff

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
    migration = diff(root, previous.as_of, snapshot.as_of, tag=LIFECYCLE_TAG).migration
    assert migration is not None
    labels = _value_names(snapshot, LIFECYCLE_TAG)
    left = [f"{labels.get(r, r)} ({previous.as_of})" for r in migration.rows]
    right = [f"{labels.get(c, c)} ({snapshot.as_of})" for c in migration.columns]
    sources, targets, values = [], [], []
    for i, row in enumerate(migration.counts):
        for j, count in enumerate(row):
            if count:
                sources.append(i)
                targets.append(len(left) + j)
                values.append(count)
    figure = go.Figure(
        go.Sankey(
            node={"label": left + right, "pad": 12},
            link={"source": sources, "target": targets, "value": values},
        )
    )
    figure.update_layout(
        title=f"生命周期迁移 · lifecycle migration {previous.as_of} → {snapshot.as_of}", height=520
    )
    section.parts.append(_figure_html(figure, "chart-migration-sankey"))
    return section


def _experiments_section(root: Path, database_url: str | None) -> Section:
    import plotly.graph_objects as go

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
    for index, (name, result) in enumerate(results):
        figure = go.Figure()
        for treatment in result["treatments"]:
            rows = [
                m
                for m in result["metrics"]
                if m["variant"] == treatment and m["comparison"] and m["comparison"]["lift"] is not None
            ]
            comparisons = [m["comparison"] for m in rows]
            figure.add_trace(
                go.Bar(
                    name=f"{treatment} vs {result['control']}",
                    x=[m["label"] for m in rows],
                    y=[c["lift"] * 100 for c in comparisons],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [(c["lift_ci_high"] - c["lift"]) * 100 for c in comparisons],
                        "arrayminus": [(c["lift"] - c["lift_ci_low"]) * 100 for c in comparisons],
                    },
                    text=[f"p={c['p_value']:.3g}" for c in comparisons],
                    textposition="outside",
                )
            )
        figure.update_layout(
            title=f"{name}: 相对提升及95%置信区间 · relative lift with 95% CI "
            f"(触达 touch {result['touch_date']}, 窗口 window {result['window_days']}d)",
            yaxis_title="提升 lift (%)",
            barmode="group",
        )
        section.parts.append(_figure_html(figure, f"chart-experiment-{index}"))
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
                    _sizes_figure(_by_segment(tags, tag), labels, title, list(labels)), f"chart-sizes-{tag}"
                )
            )
        sections.append(overview)
        rfm = Section("rfm", "RFM 热力图 · RFM heatmap")
        if {"rfm_r_score", "rfm_f_score", ARPU_TAG} <= set(tags.columns):
            rfm.parts.append(_figure_html(_rfm_heatmap(tags), "chart-rfm-heatmap"))
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
                    _sizes_figure(rows, labels, "15大价值人群 · value groups L0-L14", order),
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
