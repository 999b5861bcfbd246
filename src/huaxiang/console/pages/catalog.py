"""Tag catalog 标签目录: search and filter the tags; one tag's definition, inputs, coverage,
value distribution, drift since the previous snapshot and the tags that read it.

A merchant sees only its tag categories: a tag of another category is a 403 page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from huaxiang.analysis import charts
from huaxiang.analysis.tag_catalog import (
    TagDetail,
    categories,
    category_names,
    find_tag,
    tag_detail,
    tag_list,
)
from huaxiang.console.access import require_page, viewer
from huaxiang.console.i18n import Lang, pick, request_lang
from huaxiang.console.pages.overview import parse_as_of
from huaxiang.console.render import figure, render
from huaxiang.history import list_snapshots
from huaxiang.serve.auth import ForbiddenError, Principal

router = APIRouter(prefix="/console", include_in_schema=False)


def _category_label(category: str, lang: Lang) -> str:
    zh, en = category_names(category)
    return pick(zh, en, lang)


def _allowed(principal: Principal) -> list[str]:
    shown = categories()
    if principal.tag_categories is None:
        return shown
    return [category for category in shown if category in principal.tag_categories]


@router.get("/catalog")
def catalog(
    request: Request,
    q: str | None = Query(None),
    category: str | None = Query(None),
    as_of: str | None = Query(None),
) -> Response:
    principal = viewer(request)
    require_page(principal, "catalog")
    lang = request_lang(request)
    workspace = request.app.state.service.settings.workspace
    if category and principal.tag_categories is not None and category not in principal.tag_categories:
        raise ForbiddenError(
            f"token '{principal.name}' may not use category '{category}'; it may use "
            f"{', '.join(sorted(principal.tag_categories))}."
        )
    listing = tag_list(
        workspace,
        parse_as_of(as_of),
        query=q,
        category=category or None,
        allowed=principal.tag_categories,
    )
    return render(
        request,
        "catalog.html",
        principal=principal,
        page="catalog",
        listing=listing,
        query=q or "",
        category=category or "",
        categories=[(c, _category_label(c, lang)) for c in _allowed(principal) if listing.counts.get(c)],
        category_label=lambda c: _category_label(c, lang),
        **_snapshot_context(workspace, listing.as_of.isoformat(), as_of),
    )


def _snapshot_context(workspace: Any, shown: str, asked: str | None) -> dict[str, Any]:
    """The snapshot picker's choices, and the query that keeps a chosen snapshot in the links."""
    return {
        "snapshots": [found.as_of.isoformat() for found in reversed(list_snapshots(workspace))],
        "as_of": shown,
        "keep": f"?as_of={shown}" if asked else "",
    }


def _distribution_figure(detail: TagDetail, lang: Lang) -> Any:
    shown = detail.distribution
    if shown is None or shown.kind == "other" or not shown.non_null:
        return None
    title = charts.text(lang, "取值分布", "value distribution", sep=" · ") + f" ({detail.as_of})"
    if shown.kind == "categorical":
        names = detail.labels()
        labels = [(pick(*names[value], lang) if value in names else value) or value for value in shown.values]
        return figure(
            charts.value_bars(list(zip(labels, shown.counts, strict=True)), lang, title), "chart-distribution"
        )
    return figure(charts.histogram(shown.edges, shown.counts, lang, title), "chart-distribution")


@router.get("/catalog/{tag}")
def catalog_tag(request: Request, tag: str, as_of: str | None = Query(None)) -> Response:
    principal = viewer(request)
    require_page(principal, "catalog")
    lang = request_lang(request)
    workspace = request.app.state.service.settings.workspace
    day = parse_as_of(as_of)
    entry = find_tag(workspace, tag, day)
    allowed = principal.tag_categories
    if allowed is not None and entry.category not in allowed:
        raise ForbiddenError(
            f"token '{principal.name}' may not see tag '{tag}' (category '{entry.category}'); it may use "
            f"{', '.join(sorted(allowed))}."
        )
    detail = tag_detail(workspace, tag, day)
    visible = {item.id: item for item in tag_list(workspace, detail.as_of, allowed=allowed).tags}
    names = detail.labels()
    return render(
        request,
        "catalog_tag.html",
        principal=principal,
        page="catalog",
        title=f"{pick(entry.name_zh, entry.name_en, lang)} · {tag}",
        charts=True,
        detail=detail,
        entry=entry,
        chart=_distribution_figure(detail, lang),
        value_label=lambda value: (pick(*names[value], lang) if value in names else value) or value,
        category_label=lambda c: _category_label(c, lang),
        dependents=[visible[t] for t in detail.dependents if t in visible],
        dependents_all=[visible[t] for t in detail.dependents_all if t in visible],
        reads=[visible[t] for t in detail.reads if t in visible],
        hidden=len([t for t in detail.dependents_all if t not in visible]),
        **_snapshot_context(workspace, detail.as_of.isoformat(), as_of),
    )
