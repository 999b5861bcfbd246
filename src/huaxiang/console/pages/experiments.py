"""Experiments 实验: the saved experiments, and per experiment the lift with 95 % intervals per
variant and per segment (``?by=`` an enum tag), and the follow-up funnel.

The results are :func:`huaxiang.analysis.metrics.experiment_results`, as the API's
``GET /experiments/{name}/results`` computes them (not saved again).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from huaxiang.analysis import charts
from huaxiang.analysis.experiment_views import experiment_summaries, segment_tags
from huaxiang.analysis.experiments import get_experiment
from huaxiang.analysis.metrics import FUNNEL_STAGES, METRICS, NONE_SEGMENT, experiment_results
from huaxiang.console.access import require_page, viewer
from huaxiang.console.i18n import request_lang
from huaxiang.console.render import figure, render
from huaxiang.errors import RequestError, did_you_mean
from huaxiang.history import find_snapshot

router = APIRouter(prefix="/console", include_in_schema=False)
DEFAULT_BY = "lifecycle_stage"


@router.get("/experiments")
def experiments(request: Request) -> Response:
    principal = viewer(request)
    require_page(principal, "experiments")
    settings = request.app.state.service.settings
    found = experiment_summaries(settings.workspace, database_url=settings.database_url)
    return render(request, "experiments.html", principal=principal, page="experiments", experiments=found)


@router.get("/experiments/{name}")
def experiment(
    request: Request,
    name: str,
    by: str | None = Query(None),
    metric: str = Query("conversion"),
) -> Response:
    principal = viewer(request)
    require_page(principal, "experiments")
    lang = request_lang(request)
    settings = request.app.state.service.settings
    definition, saved = get_experiment(settings.workspace, name, database_url=settings.database_url)
    segment_as_of, choices = segment_tags(settings.workspace, definition.touch_date)
    if by is None:
        by = DEFAULT_BY if any(choice.id == DEFAULT_BY for choice in choices) else ""
    if metric not in METRICS:
        raise RequestError(
            f"unknown metric '{metric}'.{did_you_mean(metric, METRICS)} Metrics: {', '.join(METRICS)}."
        )
    results = experiment_results(
        settings.workspace, name, by=by or None, save=False, database_url=settings.database_url
    )
    data = results.to_dict()
    metrics = [m for m in METRICS if any(row.metric == m for row in results.metrics)]
    labels: dict[str, str] = {}
    if results.segment_tag and results.segment_as_of:
        segment_snapshot = find_snapshot(settings.workspace, dt.date.fromisoformat(results.segment_as_of))
        labels = charts.value_labels(segment_snapshot.definition(results.segment_tag), lang)
    if results.segments:  # segments in the tag's declared order, then the others, "(none)" last
        rank = {value: index for index, value in enumerate(labels)}
        order = sorted(results.segments, key=lambda s: (s == NONE_SEGMENT, rank.get(s, len(rank)), s))
        data["segments"] = {segment: data["segments"][segment] for segment in order}
    figures = {
        "lift": figure(charts.experiment_lift(data, lang), "chart-lift"),
        "funnel": figure(charts.experiment_funnel(data, FUNNEL_STAGES, lang), "chart-funnel"),
    }
    if results.segments:
        figures["segments"] = figure(charts.segment_lift(data, metric, labels, lang), "chart-segment-lift")
    return render(
        request,
        "experiment.html",
        principal=principal,
        page="experiments",
        title=f"{charts.text(lang, '实验', 'Experiment')} {name}",
        charts=True,
        definition=definition,
        saved=saved,
        results=results,
        segments=[(segment, results.segments[segment]) for segment in data["segments"]],
        figures=figures,
        by=by,
        metric=metric,
        metrics=metrics,
        choices=choices,
        segment_as_of=segment_as_of,
        labels=labels,
        label=lambda text: charts.pick_label(text, lang),
        stages=FUNNEL_STAGES,
        metric_kinds={key: kind for key, (kind, _) in METRICS.items()},
        metric_labels={key: text for key, (_, text) in METRICS.items()},
        special=lambda value: charts.special_label(value, lang),
    )
