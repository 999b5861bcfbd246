"""Scene pages and entries: ``GET /scenes/{scene}/page?user_id=`` and ``GET /users/{user_id}/entries``.

Thin layers over :mod:`huaxiang.scenes` (docs/scenes.md). The scene model of the served
snapshot is made on first use and then kept with it (and made ahead for each new
snapshot). The user's real-time scene score increments (events posted since the snapshot)
move the scene probability. For admins, analysts and services; merchants get 403 (a page is ranked by
one user's profile). Each request is audited like a lookup of the user.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from huaxiang.scenes import entries as scene_entries
from huaxiang.scenes.online import for_store, warm_on_swap
from huaxiang.serve.auth import Role
from huaxiang.serve.routes.common import Caller

router = APIRouter(tags=["scenes"])
ALLOWED: tuple[Role, ...] = ("admin", "analyst", "service")


def increments(service: Any, user_id: str) -> dict[str, float] | None:
    """The user's real-time scene score increments since the snapshot, by scene (None without events)."""
    if not service.events.has(user_id):
        return None
    prefix, suffix = "rt_scene_", "_increment"
    return {
        name[len(prefix) : -len(suffix)]: float(value)
        for name, value in service.events.tags(user_id).items()
        if name.startswith(prefix) and name.endswith(suffix) and value
    }


def attach(service: Any) -> None:
    """Make the scene model of each newly served snapshot ahead of requests (once scenes are used)."""
    store = service.store
    store.listeners.append(warm_on_swap(store))


@router.get("/scenes/{scene}/page")
def scene_page(
    request: Request,
    principal: Caller,
    scene: str,
    user_id: Annotated[str, Query(min_length=1, max_length=128, description="The viewing user.")],
) -> Response:
    """The scene's page as ``user_id`` sees it: widgets and their ranked items, each with its score
    and the components of the score (404 for an unknown scene or user, 400 for a broken page)."""
    principal.require(*ALLOWED, what="read scene pages ranked for single users")
    service = request.app.state.service
    model = for_store(service.store)
    body = model.page(scene, user_id, increments(service, user_id))
    service.audit.record(principal, "scene_page", user_id, 1, scene)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/users/{user_id}/entries")
def user_entries(request: Request, principal: Caller, user_id: str) -> Response:
    """The scene pages whose entry ``user_id`` sees (holds the scene tag or is in the page's
    audience), most likely scene first."""
    principal.require(*ALLOWED, what="decide entries for single users")
    service = request.app.state.service
    model = for_store(service.store)
    body = scene_entries(model, user_id, increments(service, user_id))
    service.audit.record(principal, "entries", user_id, len(body["entries"]))
    return Response(orjson.dumps(body), media_type="application/json")
