"""Scene pages 场景页 preview: a scene's page as one user sees it, widgets with ranked items and the
components of each score.

Data: the served snapshot's scene model (:mod:`huaxiang.scenes`, docs/scenes.md), with the
user's real-time scene increments, exactly as ``GET /scenes/{scene}/page`` answers. A page is
ranked by one user's profile, so it is for admins and analysts, and audited like the API's.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from huaxiang.console.access import require_page, viewer
from huaxiang.console.i18n import Lang, pick, request_lang
from huaxiang.console.render import figure, render
from huaxiang.scenes.online import scene_model
from huaxiang.scenes.pages import PageFile
from huaxiang.serve.routes.scenes import increments

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/scenes")
def scenes(
    request: Request,
    scene: str | None = Query(None, max_length=64),
    user_id: str | None = Query(None, max_length=128),
) -> Response:
    principal = viewer(request)
    require_page(principal, "scenes")
    service = request.app.state.service
    model = scene_model(service.store)
    choices = [
        (name, found.page.name_zh, found.page.name_en)
        for name, found in sorted(model.pages.items())
        if isinstance(found, PageFile)
    ]
    chosen = scene or (choices[0][0] if choices else "")
    page: dict[str, Any] | None = None
    chart = None
    user = (user_id or "").strip()
    if user and chosen:
        page = model.page(chosen, user, increments(service, user))
        service.audit.record(principal, "scene_page", user, 1, f"{chosen} (console)")
        chart = components_figure(page, request_lang(request))
    return render(
        request,
        "scenes.html",
        principal=principal,
        page="scenes",
        charts=True,
        choices=choices,
        scene=chosen,
        user_id=user,
        scene_page=page,
        chart=chart,
        as_of=service.store.current.as_of.isoformat(),
    )


def components_figure(page: dict[str, Any], lang: Lang) -> Any:
    """The first widget's items as stacked bars: weight × component for each part of the formula,
    which add up to the item's score."""
    widget = next((w for w in page["widgets"] if w["items"]), None)
    if widget is None:
        return None
    weights = widget["weights"]
    items = list(reversed(widget["items"]))
    labels = [
        f"{item['rank']}. {item.get('name') or item.get('product_id') or item.get('coupon_id') or ''}"
        for item in items
    ]
    fig = go.Figure()
    for part, weight in weights.items():
        if not weight:
            continue
        values = [weight * float(item.get("components", {}).get(part, 0.0)) for item in items]
        fig.add_trace(go.Bar(x=values, y=labels, orientation="h", name=part))
    fig.update_layout(
        barmode="stack",
        title=pick(
            f"{widget['title_zh']}: 得分构成", f"{widget['title_en'] or widget['id']}: score components", lang
        ),
        xaxis={"title": pick("加权得分", "weighted score", lang)},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure(fig, "components-chart", height=max(420, 180 + 36 * len(items)))
