"""Segments 用户分层: the migration Sankey of lifecycle stage, RFM class or value layer between
two chosen snapshots, and the value groups with ARPU and the features that distinguish them."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from huaxiang.analysis import charts
from huaxiang.analysis.segment_flows import MIGRATION_TAGS, default_dates, migration, value_groups
from huaxiang.console.access import require_page, viewer
from huaxiang.console.i18n import request_lang
from huaxiang.console.pages.overview import parse_as_of
from huaxiang.console.render import figure, render
from huaxiang.history import find_snapshot, list_snapshots
from huaxiang.segment.value_features import FEATURE_NAMES

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/segments")
def segments(
    request: Request,
    tag: str = Query("lifecycle_stage"),
    before: str | None = Query(None),
    after: str | None = Query(None),
) -> Response:
    principal = viewer(request)
    require_page(principal, "segments")
    lang = request_lang(request)
    workspace = request.app.state.service.settings.workspace
    snapshots = [found.as_of for found in list_snapshots(workspace)]
    defaults = default_dates(workspace)
    first, second = parse_as_of(before), parse_as_of(after)
    view = sankey = None
    if defaults is not None or (first and second):
        first = first or (defaults[0] if defaults else None)
        second = second or (defaults[1] if defaults else None)
        assert first is not None and second is not None
        view = migration(workspace, first, second, tag)
        sankey = figure(
            charts.migration_sankey(view.migration, view.labels(lang), first, second, lang, view.title(lang)),
            "chart-migration-sankey",
            height=560,
        )
    latest = find_snapshot(workspace)
    tag_names = {}
    for name in MIGRATION_TAGS:
        definition = latest.definition(name)
        tag_names[name] = (definition.get("name_zh") or name, definition.get("name_en") or name)
    return render(
        request,
        "segments.html",
        principal=principal,
        page="segments",
        charts=True,
        snapshots=[day.isoformat() for day in snapshots],
        tag=tag,
        tags=MIGRATION_TAGS,
        tag_names=tag_names,
        before=first.isoformat() if first else "",
        after=second.isoformat() if second else "",
        view=view,
        sankey=sankey,
        labels=view.labels(lang) if view else {},
        groups_as_of=latest.as_of.isoformat(),
    )


@router.get("/segments/value-groups")
def value_groups_part(request: Request, as_of: str | None = Query(None)) -> Response:
    """The value groups' section alone (the segments page loads it after the page: the first
    report of a snapshot recomputes the groups' features from the data, which takes seconds)."""
    principal = viewer(request)
    require_page(principal, "segments")
    lang = request_lang(request)
    workspace = request.app.state.service.settings.workspace
    snapshot = find_snapshot(workspace, parse_as_of(as_of))
    groups = value_groups(workspace, snapshot.as_of)
    groups_chart = None
    if groups is not None:
        rows = [{"segment": g.group, "users": g.users, "arpu": g.value_per_user} for g in groups.groups]
        names = {g.group: (g.persona_zh if lang == "zh" else g.persona_en) or g.group for g in groups.groups}
        title = charts.text(lang, "价值人群: 人数与ARPU", "value groups: users and ARPU")
        groups_chart = figure(charts.segment_sizes(rows, names, title, lang), "chart-value-groups")
    return render(
        request,
        "_value_groups.html",
        principal=principal,
        groups=groups,
        groups_chart=groups_chart,
        groups_as_of=snapshot.as_of.isoformat(),
        feature_name=lambda feature: FEATURE_NAMES.get(feature, (feature, feature))[0 if lang == "zh" else 1],
    )
