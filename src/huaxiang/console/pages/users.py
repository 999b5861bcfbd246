"""User 360 用户360: search a user; their tags by category (imputed values marked), scene scores,
and recent orders and events on a timeline.

Data: :func:`huaxiang.profile.profile` (through :meth:`Workspace.profile`) and
:func:`huaxiang.activity.user_activity`. Like the API's ``GET /users/{id}/tags``, a lookup is
for admins and analysts only (merchants get a 403) and is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from huaxiang.activity import UserActivity, matching_user_ids, user_activity
from huaxiang.console.access import require_page, viewer
from huaxiang.console.i18n import Lang, pick, request_lang
from huaxiang.console.pages.overview import parse_as_of
from huaxiang.console.render import figure, render
from huaxiang.errors import NotFoundError
from huaxiang.history import list_snapshots
from huaxiang.profile import ProfileEntry, UserProfile
from huaxiang.workspace import Workspace

router = APIRouter(prefix="/console", include_in_schema=False)
#: Most search results listed.
SEARCH_LIMIT = 50
#: Days of orders and events on the timeline.
TIMELINE_DAYS = 90
#: Rows of the by-day and recent-orders tables under the timeline.
TABLE_ROWS = 12


@router.get("/users")
def users(request: Request, q: str | None = Query(None, max_length=200)) -> Response:
    """The search box; an exact id opens the user, no match opens the did-you-mean page."""
    principal = viewer(request)
    require_page(principal, "users")
    generation = request.app.state.service.store.current
    query = (q or "").strip()
    matches: list[str] = []
    if query:
        if query in generation.tags.rows:
            return RedirectResponse(f"/console/users/{quote(query, safe='')}", status_code=303)
        matches = matching_user_ids(generation.tags.rows, query, limit=SEARCH_LIMIT)
        if not matches:
            return RedirectResponse(f"/console/users/{quote(query, safe='')}", status_code=303)
    return render(
        request,
        "users.html",
        principal=principal,
        page="users",
        query=query,
        matches=matches,
        limit=SEARCH_LIMIT,
        as_of=generation.as_of.isoformat(),
        users=generation.tags.users,
    )


@router.get("/users/{user_id}")
def user(request: Request, user_id: str, as_of: str | None = Query(None)) -> Response:
    """One user's tags, scene scores and timeline (audited like the API's lookups)."""
    principal = viewer(request)
    require_page(principal, "users")
    service = request.app.state.service
    workspace = Workspace(service.settings.workspace)
    day = parse_as_of(as_of) or service.store.current.as_of
    try:
        found = workspace.profile(user_id, day)
    except NotFoundError:
        service.audit.record(principal, "lookup", user_id, 0, "not found (console)")
        raise
    service.audit.record(principal, "lookup", user_id, 1, "console")
    activity = user_activity(workspace.path, user_id, as_of=found.as_of, days=TIMELINE_DAYS)
    lang = request_lang(request)
    scenes = scene_scores(found)
    return render(
        request,
        "user.html",
        principal=principal,
        page="users",
        title=user_id,
        charts=True,
        profile=found,
        activity=activity,
        days=activity.by_day()[:TABLE_ROWS],
        table_rows=TABLE_ROWS,
        scenes=scenes,
        scene_chart=scene_figure(scenes, lang) if scenes else None,
        timeline=timeline_figure(activity, lang) if activity.orders or activity.events else None,
        realtime=realtime_values(service.events.tags(user_id)) if day == service.store.current.as_of else {},
        snapshots=[snap.as_of.isoformat() for snap in reversed(list_snapshots(workspace.path))],
        as_of=found.as_of.isoformat(),
        show_value=show_value,
    )


def realtime_values(tags: dict[str, Any]) -> dict[str, Any]:
    """The real-time tags that say something (no nulls, zeros or falses)."""
    return {tag: value for tag, value in tags.items() if value not in (None, 0, False, "")}


def scene_scores(found: UserProfile) -> list[ProfileEntry]:
    """The user's scene scores (probability tags ``scene_*_score``), highest first."""
    scores = [
        entry
        for group in found.groups
        for entry in group.entries
        if entry.type == "probability" and entry.tag.startswith("scene_") and entry.value is not None
    ]
    return sorted(scores, key=lambda entry: -float(entry.value))


def scene_figure(scores: list[ProfileEntry], lang: Lang) -> Any:
    names = [pick(entry.name_zh, entry.name_en, lang) for entry in reversed(scores)]
    values = [float(entry.value) for entry in reversed(scores)]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            text=[f"{value:.2f}" for value in values],
            textposition="outside",
            marker_color="#c2410c",
        )
    )
    fig.update_layout(xaxis={"range": [0, 1.1], "title": pick("得分", "score", lang)})
    return figure(fig, "scene-chart", height=max(220, 60 + 40 * len(scores)))


def timeline_figure(activity: UserActivity, lang: Lang) -> Any:
    """Orders (sized by amount) and events (one row per event type) over time."""
    fig = go.Figure()
    kinds = sorted({event.event_type for event in activity.events})
    for kind in kinds:
        events = [event for event in activity.events if event.event_type == kind]
        fig.add_trace(
            go.Scatter(
                x=[event.event_time for event in events],
                y=[kind] * len(events),
                mode="markers",
                name=kind,
                marker={"size": 8, "opacity": 0.7},
                hovertext=[event.product_name or event.keyword or event.product_id or "" for event in events],
            )
        )
    if activity.orders:
        label = pick("下单", "order", lang)
        amounts = [float(order.amount) for order in activity.orders]
        biggest = max(amounts) or 1.0
        fig.add_trace(
            go.Scatter(
                x=[order.order_time for order in activity.orders],
                y=[label] * len(activity.orders),
                mode="markers",
                name=label,
                marker={
                    "size": [10 + 20 * amount / biggest for amount in amounts],
                    "color": ["#9b1c1c" if order.is_after_sale else "#c2410c" for order in activity.orders],
                    "symbol": "diamond",
                },
                hovertext=[
                    f"{order.order_id} ¥{order.amount:,.2f}"
                    + (" (售后 after-sale)" if order.is_after_sale else "")
                    + (f"<br>{', '.join(order.products)}" if order.products else "")
                    for order in activity.orders
                ],
            )
        )
    start = dt.datetime.combine(activity.since, dt.time.min)
    end = dt.datetime.combine(activity.as_of, dt.time.min)
    fig.update_layout(
        title=pick(
            f"近{(activity.as_of - activity.since).days}天的订单与行为",
            f"Orders and events, last {(activity.as_of - activity.since).days} days",
            lang,
        ),
        xaxis={"range": [start, end], "type": "date"},
        yaxis={"type": "category"},
        showlegend=False,
    )
    return figure(fig, "timeline", height=max(260, 120 + 36 * (len(kinds) + 1)))


def show_value(entry: ProfileEntry, lang: Lang) -> str:
    """A tag value as text: enum labels beside the value, numbers rounded, booleans as 是/否."""
    value = entry.value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return pick("是", "yes", lang) if value else pick("否", "no", lang)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1_000 else f"{value:,.0f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if entry.value_zh and lang == "zh" and entry.value_zh != value:
        return f"{entry.value_zh} ({value})"
    return str(value)
