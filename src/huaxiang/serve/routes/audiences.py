"""Audiences over the served snapshot: estimate, Venn, top N, split, save, list, export.

Each call goes through :class:`huaxiang.audience.AudienceEngine` and its definition
validator (text, JSON or ``@name``), exactly as the CLI does. Merchants may only
use tags of their categories (403 naming the tag), never see a size below their
minimum (``size: null, withheld: true``), export only salted SHA-256 ids, and get
no lists of user ids (top N).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from huaxiang.audience import AudienceEngine
from huaxiang.audience.definition import parse, referenced_audiences, referenced_tags
from huaxiang.audience.errors import AudienceError
from huaxiang.serve.auth import ForbiddenError, Principal
from huaxiang.serve.routes.common import Caller, Strict, shown_size

router = APIRouter(prefix="/audiences", tags=["audiences"])
Definition = str | dict[str, Any]
DEFINITION = Field(description="Text form, JSON form, or @saved_name (docs/audiences.md).")


class EstimateIn(Strict):
    definition: Definition = DEFINITION


class VennIn(Strict):
    definitions: list[Definition] = Field(min_length=2, max_length=3)
    names: list[str] | None = Field(None, min_length=2, max_length=3)


class TopIn(Strict):
    definition: Definition = DEFINITION
    by: str
    n: int = Field(ge=1, le=100_000)
    descending: bool = True


class SplitIn(Strict):
    definition: Definition = DEFINITION
    ratios: list[float] = Field(min_length=1, max_length=20)
    salt: str = Field(min_length=1, max_length=128)
    names: list[str] | None = Field(None, max_length=20)
    stratify: str | None = None


class SaveIn(Strict):
    name: str = Field(min_length=1, max_length=64)
    definition: Definition = DEFINITION
    kind: Literal["dynamic", "static"] = "dynamic"
    description: str | None = Field(None, max_length=2_000)
    replace: bool = False


class ExportIn(Strict):
    definition: Definition = DEFINITION
    file_name: str = Field(
        min_length=1, max_length=128, description="A bare name ending in .csv or .parquet."
    )
    hash_salt: str | None = Field(None, min_length=8, max_length=128)
    overwrite: bool = False


class Size(BaseModel):
    as_of: str
    text: str
    size: int | None
    withheld: bool
    users: int
    share: float | None
    milliseconds: float


@contextmanager
def _engine(request: Request, principal: Principal, *definitions: Definition) -> Iterator[AudienceEngine]:
    """The served snapshot's engine, after checking that the caller may use the definitions' tags."""
    generation = request.app.state.service.store.current
    with generation.audience_lock:
        engine = generation.audiences()
        for definition in definitions:
            _permitted(engine, principal, definition, generation.tags.catalog, [])
        yield engine


def _permitted(
    engine: AudienceEngine,
    principal: Principal,
    definition: Definition,
    catalog: dict[str, Any],
    seen: list[str],
) -> None:
    if principal.tag_categories is None:
        return
    if isinstance(definition, str) and definition.strip().startswith("@"):
        definition = {"in_audience": definition.strip()[1:]}
    node = parse(definition)
    for tag in referenced_tags(node):
        info = catalog.get(tag)
        if info is not None and info.category not in principal.tag_categories:
            raise ForbiddenError(
                f"tag '{tag}' is in category '{info.category}', which token '{principal.name}' may not use; "
                f"it may use {', '.join(sorted(principal.tag_categories))}."
            )
    for name in referenced_audiences(node):
        if name in seen:
            continue
        saved = engine.store.get(name)
        if saved.kind == "static" and saved.created_by != principal.name:
            raise ForbiddenError(
                f"audience '{name}' is a frozen list saved by another user; merchants may "
                "only use dynamic audiences or their own."
            )
        _permitted(engine, principal, saved.definition, catalog, [*seen, name])


def _size(principal: Principal, size: int, users: int) -> dict[str, Any]:
    shown, withheld = shown_size(principal, size)
    return {
        "size": shown,
        "withheld": withheld,
        "share": None if shown is None else (size / users if users else 0.0),
    }


@router.post("/estimate", response_model=Size)
def estimate(request: Request, principal: Caller, body: EstimateIn) -> dict[str, Any]:
    """The audience's size in the served snapshot."""
    principal.require("admin", "analyst", "merchant", what="estimate audiences")
    with _engine(request, principal, body.definition) as engine:
        result = engine.estimate(body.definition)
        return {
            "as_of": engine.as_of,
            "text": result.text,
            "users": result.users,
            "milliseconds": result.milliseconds,
            **_size(principal, result.size, result.users),
        }


@router.post("/venn")
def venn(request: Request, principal: Caller, body: VennIn) -> dict[str, Any]:
    """The size of every region of the Venn diagram of 2-3 audiences, and the union."""
    principal.require("admin", "analyst", "merchant", what="compare audiences")
    with _engine(request, principal, *body.definitions) as engine:
        result = engine.venn(body.definitions, body.names)
        users = result.users
        sizes = {
            name: _size(principal, size, users) for name, size in zip(result.names, result.sizes, strict=True)
        }
        regions = [
            {
                "label": result.region_label(pattern),
                "in": [n for n, f in zip(result.names, pattern, strict=True) if f],
                **_size(principal, size, users),
            }
            for pattern, size in result.regions.items()
        ]
        return {
            "as_of": engine.as_of,
            "names": list(result.names),
            "users": users,
            "sizes": sizes,
            "regions": regions,
            "union": _size(principal, result.union, users),
        }


@router.post("/top")
def top(request: Request, principal: Caller, body: TopIn) -> dict[str, Any]:
    """The N members with the highest (or lowest) value of a number tag, with their values."""
    principal.require("admin", "analyst", what="list user ids (merchants export salted hashes instead)")
    with _engine(request, principal, body.definition) as engine:
        table = engine.top(body.definition, body.by, body.n, descending=body.descending)
        return {"as_of": engine.as_of, "by": body.by, "size": table.num_rows, "members": table.to_pylist()}


@router.post("/split")
def split(request: Request, principal: Caller, body: SplitIn) -> dict[str, Any]:
    """A stable random split of the members into groups (sizes only)."""
    principal.require("admin", "analyst", "merchant", what="split audiences")
    if body.stratify is not None:
        _permitted_tag(request, principal, body.stratify)
    with _engine(request, principal, body.definition) as engine:
        result = engine.split(
            body.definition, body.ratios, body.salt, names=body.names, stratify=body.stratify
        )
        groups = [
            {"name": name, "ratio": ratio, **_size(principal, len(result.groups[name]), engine.index.users)}
            for name, ratio in zip(result.names, result.ratios, strict=True)
        ]
        return {"as_of": engine.as_of, "salt": body.salt, "groups": groups}


def _permitted_tag(request: Request, principal: Principal, tag: str) -> None:
    catalog = request.app.state.service.store.current.tags.catalog
    info = catalog.get(tag)
    if (
        principal.tag_categories is not None
        and info is not None
        and info.category not in principal.tag_categories
    ):
        raise ForbiddenError(
            f"tag '{tag}' is in category '{info.category}', which token '{principal.name}' may not use."
        )


@router.post("", status_code=201)
def save(request: Request, principal: Caller, body: SaveIn) -> dict[str, Any]:
    """Save an audience (dynamic: the definition; static: today's members). Audited."""
    principal.require("admin", "analyst", "merchant", what="save audiences")
    service = request.app.state.service
    with _engine(request, principal, body.definition) as engine:
        saved = engine.save(
            body.name,
            body.definition,
            kind=body.kind,
            description=body.description,
            by=principal.name,
            replace=body.replace,
        )
        size = saved.latest_size or 0
        service.audit.record(principal, "audience_save", saved.name, size, saved.text)
        return {
            "name": saved.name,
            "kind": saved.kind,
            "text": saved.text,
            "as_of": engine.as_of,
            **_size(principal, size, engine.index.users),
        }


@router.get("")
def list_saved(request: Request, principal: Caller) -> list[dict[str, Any]]:
    """Saved audiences the caller may use, with their latest size."""
    principal.require("admin", "analyst", "merchant", what="list audiences")
    generation = request.app.state.service.store.current
    found = []
    with _engine(request, principal) as engine:
        users = engine.index.users
        for saved in engine.all():
            try:
                _permitted(engine, principal, {"in_audience": saved.name}, generation.tags.catalog, [])
            except (ForbiddenError, AudienceError):
                continue
            found.append(
                {
                    "name": saved.name,
                    "kind": saved.kind,
                    "text": saved.text,
                    "description": saved.description,
                    "created_by": saved.created_by,
                    "sizes": [
                        {"as_of": as_of, **_size(principal, size, users)} for as_of, size in saved.sizes
                    ],
                }
            )
    return found


@router.post("/export", status_code=201)
def export(request: Request, principal: Caller, body: ExportIn) -> dict[str, Any]:
    """Write the members' ids to DIR/exports/file_name (merchants: always salted SHA-256). Audited."""
    principal.require("admin", "analyst", "merchant", what="export audiences")
    service = request.app.state.service
    salt = body.hash_salt
    if principal.is_merchant:
        salt = salt or principal.export_salt
    with _engine(request, principal, body.definition) as engine:
        if principal.is_merchant:
            size = len(engine.members(body.definition))
            if size < principal.min_audience:
                raise ForbiddenError(
                    f"the audience is below the minimum size of token '{principal.name}' "
                    f"({principal.min_audience:,}); its size is withheld. Loosen a condition."
                )
        result = engine.export(
            body.definition, body.file_name, salt=salt, by=principal.name, overwrite=body.overwrite
        )
        text = engine.definition(body.definition)
        service.audit.record(principal, "export", result.path.name, result.rows, f"{result.id_mode}: {text}")
        return {
            "file": result.path.name,
            "rows": result.rows,
            "id_mode": result.id_mode,
            "format": result.file_format,
            "sha256": result.sha256,
            "as_of": engine.as_of,
        }
