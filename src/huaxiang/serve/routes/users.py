"""``GET /users/{user_id}/tags``: every tag of one user, the imputed ones, and the real-time tags."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from huaxiang.errors import NotFoundError
from huaxiang.serve.routes.common import BEARER_SECURITY, authenticate

router = APIRouter(tags=["users"])


class UserTags(BaseModel):
    user_id: str
    as_of: str
    in_snapshot: bool
    tags: dict[str, Any]
    imputed: list[str]
    realtime: dict[str, Any]


@router.get("/users/{user_id}/tags", response_model=UserTags, openapi_extra=BEARER_SECURITY)
async def user_tags(request: Request, user_id: str) -> Response:
    """Every tag of one user, the imputed ones and the real-time tags (audited; not for merchants).

    Tags are those of the served snapshot, null where the user has none.
    """
    principal = authenticate(request)
    principal.require("admin", "analyst", "service", what="look up single users")
    service = request.app.state.service
    generation = service.store.current  # one reference: a swap mid-request cannot mix snapshots
    found = generation.tags.lookup(user_id)
    if found is None and not service.events.has(user_id):
        service.audit.record(principal, "lookup", user_id, 0, "not found")
        raise NotFoundError(
            f"no user '{user_id}' in the snapshot of {generation.as_of} ({generation.tags.users:,} users) "
            "and no real-time events for them; user ids are case-sensitive."
        )
    tags, imputed = found if found is not None else ({}, [])
    body = {
        "user_id": user_id,
        "as_of": generation.as_of.isoformat(),
        "in_snapshot": found is not None,
        "tags": tags,
        "imputed": imputed,
        "realtime": service.events.tags(user_id),
    }
    service.audit.record(principal, "lookup", user_id, 1)
    # orjson: encoding a user's ~80 tags takes 5 µs against 130 µs for the json module.
    return Response(orjson.dumps(body), media_type="application/json")
