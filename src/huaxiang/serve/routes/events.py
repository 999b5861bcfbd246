"""``POST /events``: a batch of behaviour events, logged durably before the answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from huaxiang.errors import RequestError
from huaxiang.serve.routes.common import Caller, Strict

router = APIRouter(tags=["events"])


class Event(Strict):
    user_id: str = Field(min_length=1, max_length=128)
    event_type: str = Field(
        description="visit, view, search, click, favorite, cart, cart_remove, purchase, ..."
    )
    event_time: dt.datetime | None = Field(None, description="ISO 8601; local workspace time without offset.")
    product_id: str | None = Field(None, max_length=256)
    keyword: str | None = Field(None, max_length=256)
    content_id: str | None = Field(None, max_length=256)


class EventBatch(Strict):
    events: list[Event] = Field(min_length=1)


class Accepted(BaseModel):
    accepted: int


@router.post("/events", response_model=Accepted)
def post_events(request: Request, principal: Caller, batch: EventBatch) -> dict[str, Any]:
    """Append a batch to the event log (fsync'ed before this answers) and update the real-time tags."""
    principal.require("admin", "service", what="send events")
    service = request.app.state.service
    limit = service.settings.max_events_per_batch
    if len(batch.events) > limit:
        raise RequestError(f"a batch holds at most {limit:,} events, got {len(batch.events):,}; split it.")
    raw = [event.model_dump(exclude_none=True) for event in batch.events]
    return {"accepted": service.events.ingest(raw)}
