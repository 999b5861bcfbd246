"""Experiments and the report's data: the saved experiments, one experiment, its results; segments.

Library calls of :mod:`huaxiang.analysis` over the served workspace, for admins and
analysts (experiments and segment sizes are internal figures: merchants and service
tokens are refused with 403).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from huaxiang.analysis.experiments import get_experiment, list_experiments
from huaxiang.analysis.metrics import experiment_results
from huaxiang.analysis.report import segment_summary
from huaxiang.analysis.store import SavedExperiment
from huaxiang.serve.auth import Role
from huaxiang.serve.routes.common import Caller

router = APIRouter(tags=["analysis"])
READERS: tuple[Role, ...] = ("admin", "analyst")


def _saved(saved: SavedExperiment) -> dict[str, Any]:
    return {
        "name": saved.name,
        "created_by": saved.created_by,
        "created_at": saved.created_at.isoformat(),
        "assigned_as_of": saved.assigned_as_of,
        "sizes": saved.sizes,
        "definition": saved.definition,
    }


@router.get("/experiments")
def experiments(request: Request, principal: Caller) -> list[dict[str, Any]]:
    """The saved experiments: definition, who created it and when, group sizes once assigned."""
    principal.require(*READERS, what="read experiments")
    settings = request.app.state.service.settings
    found = list_experiments(settings.workspace, database_url=settings.database_url)
    return [_saved(saved) for saved in found]


@router.get("/experiments/{name}")
def experiment(request: Request, principal: Caller, name: str) -> dict[str, Any]:
    """One saved experiment (404 naming the saved ones when there is no such name)."""
    principal.require(*READERS, what="read experiments")
    settings = request.app.state.service.settings
    _, saved = get_experiment(settings.workspace, name, database_url=settings.database_url)
    return _saved(saved)


@router.get("/experiments/{name}/results")
def results(
    request: Request,
    principal: Caller,
    name: str,
    by: Annotated[str | None, Query(description="An enum or boolean tag: per-segment breakdown.")] = None,
) -> dict[str, Any]:
    """Lift with 95 % intervals and p-values per variant and metric, the funnel, and per segment."""
    principal.require(*READERS, what="read experiment results")
    settings = request.app.state.service.settings
    found = experiment_results(
        settings.workspace, name, by=by, save=False, database_url=settings.database_url
    )
    return found.to_dict()


@router.get("/reports/segments")
def segments(
    request: Request,
    principal: Caller,
    tag: Annotated[str, Query(description="An enum or boolean tag, e.g. rfm_class.")] = "lifecycle_stage",
    as_of: Annotated[dt.date | None, Query(description="The snapshot (default: the latest).")] = None,
) -> dict[str, Any]:
    """Users and ARPU per value of a tag: the data of the report's size charts."""
    principal.require(*READERS, what="read segment sizes")
    return segment_summary(request.app.state.service.settings.workspace, tag, as_of)
