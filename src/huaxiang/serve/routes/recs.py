"""``GET /users/{user_id}/recommendations?k=``: personal recommendations (docs/scenes.md).

A thin layer over :meth:`huaxiang.scenes.SceneModel.recommendations` (affinity plus item
co-occurrence, bought products excluded, popularity or declared preferences for users
without history). For admins, analysts and services; merchants get 403.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response

from huaxiang.recs import MAX_K
from huaxiang.scenes.online import for_store
from huaxiang.serve.auth import Role
from huaxiang.serve.routes.common import Caller

router = APIRouter(tags=["recommendations"])
ALLOWED: tuple[Role, ...] = ("admin", "analyst", "service")


@router.get("/users/{user_id}/recommendations")
def recommendations(
    request: Request,
    principal: Caller,
    user_id: str,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many products.")] = 10,
) -> Response:
    """The user's ``k`` best products with score, reason and the components of the score."""
    principal.require(*ALLOWED, what="read recommendations for single users")
    service = request.app.state.service
    model = for_store(service.store)
    body = model.recommendations(user_id, k)
    service.audit.record(principal, "recommendations", user_id, len(body["items"]))
    return Response(orjson.dumps(body), media_type="application/json")
