"""Overview 概览: users, buyers, GMV and ARPU of a snapshot; lifecycle stages and RFM classes
with size and ARPU, the RFM heatmap, the value grid and the AIPL funnel with its flow rates."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from huaxiang.analysis import charts
from huaxiang.analysis.overview import snapshot_overview
from huaxiang.analysis.segment_stats import shop_segments
from huaxiang.console.access import require_page, viewer
from huaxiang.console.i18n import request_lang
from huaxiang.console.render import figure, render
from huaxiang.errors import RequestError

router = APIRouter(prefix="/console", include_in_schema=False)


def parse_as_of(text: str | None) -> dt.date | None:
    """``?as_of=YYYY-MM-DD`` (absent or empty: the latest snapshot)."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise RequestError(f"as_of '{text}' is not a date: use YYYY-MM-DD, e.g. 2026-10-31.") from error


@router.get("/")
def overview(request: Request, as_of: str | None = Query(None)) -> Response:
    principal = viewer(request)
    require_page(principal, "overview")
    workspace = request.app.state.service.settings.workspace
    summary = snapshot_overview(workspace, parse_as_of(as_of))
    segments = shop_segments(workspace, summary.as_of)
    lang = request_lang(request)
    figures = {}
    sizes = []
    for key, found, zh, en in (
        ("lifecycle_stage", segments.lifecycle, "生命周期阶段", "lifecycle stages"),
        ("rfm_class", segments.rfm, "RFM 八类", "RFM classes"),
    ):
        if found is None:
            continue
        labels = found.labels(lang)
        sizes.append((key, zh, en, found, labels))
        figures[key] = figure(
            charts.segment_sizes(found.rows, labels, charts.text(lang, zh, en), lang, found.order),
            f"chart-sizes-{key}",
        )
    if segments.rfm_cells is not None:
        figures["rfm"] = figure(charts.rfm_heatmap(segments.rfm_cells, lang), "chart-rfm-heatmap")
    if segments.value_grid is not None:
        figures["grid"] = figure(charts.value_grid_heatmap(segments.value_grid, lang), "chart-value-grid")
    if segments.aipl_counts is not None:
        figures["aipl"] = figure(
            charts.aipl_funnel(segments.aipl_counts, segments.as_of, lang), "chart-aipl-funnel"
        )
    if segments.aipl_flows is not None and segments.previous is not None:
        figures["flows"] = figure(
            charts.aipl_flow_rates(segments.aipl_flows.flows, segments.previous, segments.as_of, lang),
            "chart-aipl-flows",
        )
    return render(
        request,
        "overview.html",
        principal=principal,
        page="overview",
        charts=True,
        summary=summary,
        segments=segments,
        sizes=sizes,
        figures=figures,
        aipl_label=lambda stage: charts.aipl_label(stage, lang),
        snapshots=[day.isoformat() for day in reversed(summary.snapshots)],
        as_of=summary.as_of.isoformat(),
    )
