"""``GET /health`` and ``GET /version`` (no token needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from huaxiang import __version__

router = APIRouter(tags=["meta"])
API_VERSION = "1"


class Health(BaseModel):
    status: str
    as_of: str | None
    users: int | None
    snapshot_loaded_at: str | None
    snapshot_swaps: int
    events_applied: int
    store_error: str | None


class Version(BaseModel):
    version: str
    api: str


@router.get("/health", response_model=Health)
async def health(request: Request) -> dict[str, Any]:
    """Whether the service is up and which snapshot it serves."""
    service = request.app.state.service
    current = service.store.served
    return {
        "status": "ok" if current is not None else "no_snapshot",
        "as_of": current.as_of.isoformat() if current is not None else None,
        "users": current.tags.users if current is not None else None,
        "snapshot_loaded_at": current.tags.loaded_at.isoformat(timespec="seconds") if current else None,
        "snapshot_swaps": service.store.swaps,
        "events_applied": service.events.applied,
        "store_error": service.store.last_error,
    }


@router.get("/version", response_model=Version)
async def version() -> dict[str, str]:
    """The huaxiang version and the API version."""
    return {"version": __version__, "api": API_VERSION}
