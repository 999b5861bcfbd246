"""``GET /catalog``: the served snapshot's tags with coverage and distribution, and the real-time tags."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from huaxiang.catalog import Category
from huaxiang.errors import NotFoundError, RequestError, did_you_mean
from huaxiang.serve.auth import ForbiddenError, Principal
from huaxiang.serve.routes.common import Caller
from huaxiang.serve.store import TagInfo

router = APIRouter(tags=["catalog"])


class Tag(BaseModel):
    id: str
    name_zh: str
    name_en: str
    category: str
    type: str
    coverage: float | None
    distribution: dict[str, Any]
    values: list[dict[str, Any]] | None
    realtime: bool


class Catalog(BaseModel):
    as_of: str
    users: int
    tags: list[Tag]


def visible_tags(request: Request, principal: Principal) -> list[TagInfo]:
    """The snapshot's tags and the real-time ones, limited to a merchant's categories."""
    service = request.app.state.service
    tags = list(service.store.current.tags.catalog.values())
    tags += [
        TagInfo(id=i, name_zh=zh, name_en=en, category=category, type=kind, realtime=True)
        for i, zh, en, category, kind in service.events.catalog()
    ]
    if principal.tag_categories is not None:
        tags = [tag for tag in tags if tag.category in principal.tag_categories]
    return tags


@router.get("/catalog", response_model=Catalog)
def catalog(
    request: Request,
    principal: Caller,
    category: str | None = Query(None, description="Only this category (basic, category_scene ...)."),
) -> dict[str, Any]:
    """Every tag the caller may use, with coverage and distribution in the served snapshot."""
    generation = request.app.state.service.store.current
    tags = visible_tags(request, principal)
    if category is not None:
        known = [c.value for c in Category]
        if category not in known:
            raise RequestError(
                f"unknown category {category!r}.{did_you_mean(category, known)} "
                f"Categories: {', '.join(known)}."
            )
        if principal.tag_categories is not None and category not in principal.tag_categories:
            raise ForbiddenError(
                f"token '{principal.name}' may not use category '{category}'; it may use "
                f"{', '.join(sorted(principal.tag_categories))}."
            )
        tags = [tag for tag in tags if tag.category == category]
    return {
        "as_of": generation.as_of.isoformat(),
        "users": generation.tags.users,
        "tags": [asdict(tag) for tag in tags],
    }


@router.get("/catalog/{tag}", response_model=Tag)
def catalog_tag(request: Request, principal: Caller, tag: str) -> dict[str, Any]:
    """One tag: names, category, type, coverage, distribution, declared values."""
    tags = {item.id: item for item in visible_tags(request, principal)}
    if tag not in tags:
        raise NotFoundError(f"no tag '{tag}' for token '{principal.name}'.{did_you_mean(tag, tags)}")
    return asdict(tags[tag])
