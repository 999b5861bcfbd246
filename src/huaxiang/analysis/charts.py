"""The charts of the report and the console, from one definition each.

Every function takes the data (plain numbers, already aggregated: see
:mod:`huaxiang.analysis.segment_stats`, :mod:`huaxiang.history`, :mod:`huaxiang.analysis.metrics`)
and a language, and returns a Plotly figure:

- ``lang="zh"`` or ``"en"``: the console, in the viewer's language;
- ``lang="both"``: the offline report, Chinese first and English beside (``老客 active``).

Nothing here reads a file or computes a statistic; the figures are what the data says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ChartLang = Literal["zh", "en", "both"]
LANGS: tuple[ChartLang, ...] = ("zh", "en", "both")

#: The AIPL stages in order with their names (Chinese, English).
AIPL_NAMES: dict[str, tuple[str, str]] = {
    "awareness": ("认知 A", "A awareness"),
    "interest": ("兴趣 I", "I interest"),
    "purchase": ("购买 P", "P purchase"),
    "loyalty": ("忠诚 L", "L loyalty"),
}


def check_lang(lang: str) -> ChartLang:
    """``lang`` if it is one of :data:`LANGS`; a clear error otherwise."""
    if lang not in LANGS:
        raise ValueError(f"chart language must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def text(lang: ChartLang, zh: str, en: str, *, sep: str = " ") -> str:
    """``zh``, ``en``, or both joined by ``sep`` (titles use ``" · "``, labels a space)."""
    if lang == "zh":
        return zh
    if lang == "en":
        return en
    return f"{zh}{sep}{en}" if zh != en else zh


def split_bilingual(label: str) -> tuple[str, str]:
    """``("转化率", "conversion")`` from the library's bilingual label ``转化率 conversion``.

    The Chinese part never holds a space, so the first space separates the two; a label
    without one is the same in both languages.
    """
    zh, _, en = label.partition(" ")
    return zh, (en or zh)


def pick_label(label: str, lang: ChartLang) -> str:
    """One language of a bilingual label (``转化率 conversion``), or the label itself for ``both``."""
    if lang == "both":
        return label
    zh, en = split_bilingual(label)
    return zh if lang == "zh" else en


def value_labels(definition: Mapping[str, Any], lang: ChartLang) -> dict[str, str]:
    """Labels of an enum tag's declared values (``definition["values"]``) in ``lang``.

    ``both`` gives ``新客 new``; a value without a name shows as itself (``L3``,
    ``重要价值客户 Important value ...`` when only ``name_en`` is given).
    """
    labels: dict[str, str] = {}
    for item in definition.get("values") or []:
        value = str(item["value"])
        zh, en = item.get("name_zh"), item.get("name_en")
        if lang == "zh":
            labels[value] = zh or value
        elif lang == "en":
            labels[value] = en or value
        else:
            labels[value] = f"{zh or value} {en}" if en and en != (zh or value) else (zh or value)
    return labels


# ---------------------------------------------------------------------------- segments


def segment_sizes(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    title: str,
    lang: ChartLang,
    order: Sequence[str] | None = None,
) -> Any:
    """Users (bars) and ARPU (line, right axis) per segment.

    ``rows``: ``{"segment", "users", "arpu"}`` (see :func:`huaxiang.analysis.segment_stats.by_segment`);
    ``order``: the segments' order (declared values first; the others after, as given).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rank = {value: index for index, value in enumerate(order or [])}
    ranked = sorted(rows, key=lambda r: rank.get(str(r["segment"]), len(rank)))
    names = [labels.get(str(r["segment"]), str(r["segment"])) for r in ranked]
    users_label = text(lang, "用户数", "users")
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Bar(x=names, y=[int(r["users"]) for r in ranked], name=users_label), secondary_y=False
    )
    figure.add_trace(
        go.Scatter(
            x=names,
            y=[round(float(r["arpu"]), 2) for r in ranked],
            name=f"ARPU ({text(lang, '近365天', '365d')})",
            mode="lines+markers",
        ),
        secondary_y=True,
    )
    figure.update_layout(title=title, legend={"orientation": "h", "y": -0.25})
    figure.update_yaxes(title_text=users_label, rangemode="tozero", secondary_y=False)
    figure.update_yaxes(title_text=f"ARPU ({text(lang, '元', 'CNY')})", rangemode="tozero", secondary_y=True)
    return figure


@dataclass(frozen=True)
class RfmCells:
    """The RFM heatmap's cells: ``users[f - 1][r - 1]`` and ``arpu[f - 1][r - 1]`` for scores 1-5."""

    users: list[list[int]]
    arpu: list[list[float]]


def rfm_heatmap(cells: RfmCells, lang: ChartLang) -> Any:
    """R score × F score: users per cell (the colour and the number), ARPU on hover."""
    import plotly.graph_objects as go

    users = text(lang, "用户", "users")
    figure = go.Figure(
        go.Heatmap(
            z=cells.users,
            x=[f"R{i}" for i in range(1, 6)],
            y=[f"F{i}" for i in range(1, 6)],
            customdata=cells.arpu,
            text=cells.users,
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": users},
            hovertemplate=f"%{{x}} %{{y}}<br>{users}: %{{z}}<br>ARPU: %{{customdata}}<extra></extra>",
        )
    )
    figure.update_layout(
        title=text(lang, "RFM 热力图: R得分 × F得分", "RFM heatmap: R score × F score", sep=" · "),
        xaxis_title=text(lang, "R 得分", "recency score"),
        yaxis_title=text(lang, "F 得分", "frequency score"),
    )
    return figure


@dataclass(frozen=True)
class ValueGrid:
    """The value grid: users per (historical spend band, recency band), and those who never bought."""

    spends: list[str]
    recencies: list[str]
    users: list[list[int]]
    """``users[i][j]``: users in spend band ``spends[i]`` and recency band ``recencies[j]``."""
    never: int

    @property
    def total(self) -> int:
        return sum(sum(row) for row in self.users)


_LAYER = re.compile(r"^L(\d+) (\S+?)·(\S+) ")


def value_grid_from_layers(rows: Sequence[Mapping[str, Any]]) -> ValueGrid:
    """A :class:`ValueGrid` from users per ``value_layer_name`` (``L3 0-500元·31-90天 ...``).

    Names that are not a grid cell (``L0 未购 never bought``) count as never bought.
    """
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
    users = [[cells.get((s, r), 0) for r in recencies] for s in spends]
    return ValueGrid(spends=spends, recencies=recencies, users=users, never=never)


def value_grid_heatmap(grid: ValueGrid, lang: ChartLang) -> Any:
    """Historical spend × recency of the last order: users per cell."""
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Heatmap(
            z=grid.users,
            x=grid.recencies,
            y=grid.spends,
            text=grid.users,
            texttemplate="%{text}",
            colorscale="Greens",
            colorbar={"title": text(lang, "用户", "users")},
        )
    )
    figure.update_layout(
        title=text(lang, "价值分层: 历史消费 × 最近购买", "value grid: spend × recency", sep=" · ")
        + f" ({text(lang, 'L0 未购', 'L0 never bought')}: {grid.never:,})",
        xaxis_title=text(lang, "最近购买", "recency"),
        yaxis_title=text(lang, "历史消费", "historical spend") + f" ({text(lang, '元', 'CNY')})",
    )
    return figure


# ---------------------------------------------------------------------------- AIPL


def aipl_label(stage: str, lang: ChartLang) -> str:
    zh, en = AIPL_NAMES[stage]
    return text(lang, zh, en.split(" ", 1)[1] if lang == "both" else en)


def aipl_funnel(counts: Mapping[str, int], as_of: dt.date | str, lang: ChartLang) -> Any:
    """Users per AIPL stage at the date, as a funnel."""
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Funnel(
            y=[aipl_label(stage, lang) for stage in AIPL_NAMES],
            x=[int(counts.get(stage, 0)) for stage in AIPL_NAMES],
            textinfo="value+percent total",
        )
    )
    figure.update_layout(
        title=text(lang, "AIPL 各阶段人数", "users per AIPL stage", sep=" · ") + f" ({as_of})"
    )
    return figure


def aipl_flow_rates(
    flows: Sequence[Any], before: dt.date | str, after: dt.date | str, lang: ChartLang
) -> Any:
    """The flow rates A→I, I→P, P→L, A→P between two dates (``huaxiang.history.Flow`` items)."""
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Bar(
            x=[flow.name for flow in flows],
            y=[round((flow.rate or 0.0) * 100, 2) for flow in flows],
            text=[f"{(flow.rate or 0):.1%} ({flow.moved:,}/{flow.users:,})" for flow in flows],
            textposition="outside",
        )
    )
    figure.update_layout(
        title=text(lang, "AIPL 流转率", "flow rates", sep=" · ") + f" {before} → {after}",
        yaxis_title=text(lang, "流转率", "rate") + " (%)",
    )
    return figure


# ---------------------------------------------------------------------------- migration


def special_label(value: str, lang: ChartLang) -> str:
    """The migration matrix's ``(none)``, ``(new)``, ``(gone)`` in ``lang``."""
    names = {"(none)": ("(无)", "(none)"), "(new)": ("(新增)", "(new)"), "(gone)": ("(离开)", "(gone)")}
    if value in names:
        zh, en = names[value]
        return text(lang, zh, en)
    return value


def migration_sankey(
    migration: Any,
    labels: Mapping[str, str],
    before: dt.date | str,
    after: dt.date | str,
    lang: ChartLang,
    title: str,
) -> Any:
    """Where the users of each value at ``before`` are at ``after`` (a ``history.Migration``).

    Nodes read ``老客 active (2026-09-30)``; links carry the users who moved.
    """
    import plotly.graph_objects as go

    def name(value: str) -> str:
        return labels.get(value) or special_label(value, lang)

    left = [f"{name(row)} ({before})" for row in migration.rows]
    right = [f"{name(column)} ({after})" for column in migration.columns]
    sources, targets, values = [], [], []
    for i, row in enumerate(migration.counts):
        for j, count in enumerate(row):
            if count:
                sources.append(i)
                targets.append(len(left) + j)
                values.append(int(count))
    figure = go.Figure(
        go.Sankey(
            node={"label": left + right, "pad": 12},
            link={"source": sources, "target": targets, "value": values},
        )
    )
    figure.update_layout(title=title, height=520)
    return figure


# ---------------------------------------------------------------------------- experiments


def _lift_bar(name: str, rows: Sequence[Mapping[str, Any]], x: list[str]) -> Any:
    import plotly.graph_objects as go

    comparisons = [row["comparison"] for row in rows]
    return go.Bar(
        name=name,
        x=x,
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


def _with_lift(metrics: Sequence[Mapping[str, Any]], variant: str) -> list[Mapping[str, Any]]:
    return [
        m
        for m in metrics
        if m["variant"] == variant and m.get("comparison") and m["comparison"].get("lift") is not None
    ]


def experiment_lift(result: Mapping[str, Any], lang: ChartLang) -> Any:
    """Relative lift with its 95 % interval per metric, one bar series per treatment.

    ``result``: an experiment's results as plain data (``ExperimentResults.to_dict()``).
    """
    import plotly.graph_objects as go

    figure = go.Figure()
    for treatment in result["treatments"]:
        rows = _with_lift(result["metrics"], treatment)
        figure.add_trace(
            _lift_bar(
                f"{treatment} vs {result['control']}", rows, [pick_label(m["label"], lang) for m in rows]
            )
        )
    figure.update_layout(
        title=f"{result['name']}: "
        + text(lang, "相对提升及95%置信区间", "relative lift with 95% CI", sep=" · ")
        + f" ({text(lang, '触达', 'touch')} {result['touch_date']}, "
        f"{text(lang, '窗口', 'window')} {result['window_days']}d)",
        yaxis_title=text(lang, "提升", "lift") + " (%)",
        barmode="group",
    )
    return figure


def segment_lift(result: Mapping[str, Any], metric: str, labels: Mapping[str, str], lang: ChartLang) -> Any:
    """Relative lift of one metric with its 95 % interval per segment (``result["segments"]``)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    label = metric
    for treatment in result["treatments"]:
        names: list[str] = []
        rows: list[Mapping[str, Any]] = []
        for segment, metrics in result["segments"].items():
            for row in _with_lift([m for m in metrics if m["metric"] == metric], treatment):
                names.append(labels.get(segment) or special_label(segment, lang))
                rows.append(row)
                label = pick_label(row["label"], lang)
        figure.add_trace(_lift_bar(f"{treatment} vs {result['control']}", rows, names))
    figure.update_layout(
        title=f"{result['name']}: {label} "
        + text(lang, "分群提升", "lift per segment", sep=" · ")
        + f" ({result['segment_tag']})",
        yaxis_title=text(lang, "提升", "lift") + " (%)",
        barmode="group",
    )
    return figure


def experiment_funnel(result: Mapping[str, Any], stages: Sequence[tuple[str, str]], lang: ChartLang) -> Any:
    """The follow-up funnel (reached → return visit → favorite/cart → order), one series per variant.

    ``stages``: ``(key, bilingual label)`` in order (``huaxiang.analysis.metrics.FUNNEL_STAGES``).
    """
    import plotly.graph_objects as go

    figure = go.Figure()
    for row in result["funnel"]:
        figure.add_trace(
            go.Funnel(
                name=row["variant"],
                y=[pick_label(label, lang) for _, label in stages],
                x=[int(row["counts"][key]) for key, _ in stages],
                textinfo="value+percent initial",
            )
        )
    figure.update_layout(title=f"{result['name']}: " + text(lang, "后续漏斗", "follow-up funnel", sep=" · "))
    return figure


# ---------------------------------------------------------------------------- distributions


def value_bars(counts: Sequence[tuple[str, int]], lang: ChartLang, title: str) -> Any:
    """Users per value of an enum or boolean tag (``counts``: label and users, in order)."""
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Bar(
            x=[label for label, _ in counts],
            y=[int(users) for _, users in counts],
            text=[f"{int(users):,}" for _, users in counts],
            textposition="outside",
        )
    )
    figure.update_layout(title=title, yaxis_title=text(lang, "用户数", "users"))
    return figure


def histogram(edges: Sequence[float], counts: Sequence[int], lang: ChartLang, title: str) -> Any:
    """Users per bin of a number tag: ``counts[i]`` users in ``[edges[i], edges[i + 1])``."""
    import plotly.graph_objects as go

    centres = [(low + high) / 2 for low, high in zip(edges, edges[1:], strict=False)]
    widths = [high - low for low, high in zip(edges, edges[1:], strict=False)]
    figure = go.Figure(
        go.Bar(
            x=centres,
            y=[int(c) for c in counts],
            width=widths,
            customdata=[[low, high] for low, high in zip(edges, edges[1:], strict=False)],
            hovertemplate="[%{customdata[0]:.4g}, %{customdata[1]:.4g}): %{y}<extra></extra>",
        )
    )
    figure.update_layout(title=title, yaxis_title=text(lang, "用户数", "users"), bargap=0.02)
    return figure


__all__ = [
    "AIPL_NAMES",
    "ChartLang",
    "RfmCells",
    "ValueGrid",
    "aipl_flow_rates",
    "aipl_funnel",
    "aipl_label",
    "check_lang",
    "experiment_funnel",
    "experiment_lift",
    "histogram",
    "migration_sankey",
    "pick_label",
    "rfm_heatmap",
    "segment_lift",
    "segment_sizes",
    "split_bilingual",
    "text",
    "value_bars",
    "value_grid_from_layers",
    "value_grid_heatmap",
    "value_labels",
]
