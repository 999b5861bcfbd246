"""``GET /audit``: the audit trail (admins only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from huaxiang.serve.routes.common import Caller

router = APIRouter(tags=["admin"])


class AuditEntry(BaseModel):
    at: dt.datetime
    who: str
    role: str
    action: str
    target: str
    count: int | None
    detail: str | None


@router.get("/audit", response_model=list[AuditEntry])
def audit(
    request: Request,
    principal: Caller,
    limit: int = Query(100, ge=1, le=10_000),
    action: str | None = Query(None, description="lookup, audience_save, export ..."),
    who: str | None = Query(None, description="A token name."),
) -> list[dict[str, Any]]:
    """Lookups, audience saves and exports: who, what, when, how many; newest first."""
    principal.require("admin", what="read the audit log")
    records = request.app.state.service.audit.read(limit=limit, action=action, who=who)
    return [asdict(record) for record in records]
