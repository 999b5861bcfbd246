"""Entry decision (入口决策): which scene pages to show a user, most likely scene first.

A page's entry is shown to a user who holds the scene tag (``scene_<slug>`` of the
snapshot, or reaches the tag's threshold once the real-time scene score increments since
the snapshot are added) or is in the page's ``audience`` (an audience definition, evaluated
once per snapshot on the bitmap index). Disabled pages are never shown. Entries are ordered by
the user's scene probability (``scene_<slug>_score``), highest first, then by scene.
A page whose definition or audience is broken is listed under ``skipped`` with the
reason, and the other pages are still decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from huaxiang.errors import ConfigError
from huaxiang.scenes.model import SceneModel


def entries(model: SceneModel, user_id: str, realtime: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The scene pages to show ``user_id``, and why (module doc).

    ``realtime``: the user's real-time scene score increments by scene (the service's
    ``rt_scene_<s>_increment`` tags), which move the probability and may make the tag hold.
    """
    increments = {scene: float(value) for scene, value in (realtime or {}).items()}
    model.require_user(user_id, realtime=any(value > 0 for value in increments.values()))
    shown: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for scene, found in sorted(model.pages.items()):
        if isinstance(found, ConfigError):
            skipped.append({"scene": scene, "error": str(found)})
            continue
        page = found.page
        if not page.enabled:
            continue
        increment = increments.get(scene, 0.0)
        holds = model.holds(user_id, scene, increment)
        try:
            in_audience = page.audience is not None and user_id in model.audience(page)
        except ConfigError as error:
            skipped.append({"scene": scene, "error": str(error)})
            in_audience = False
        if not (holds or in_audience):
            continue
        shown.append(
            {
                "scene": scene,
                "name_zh": page.name_zh,
                "name_en": page.name_en,
                "scene_probability": round(model.probability(user_id, scene, increment), 6),
                "holds_scene_tag": holds,
                "in_audience": in_audience,
                "page": f"/scenes/{quote(scene)}/page?user_id={quote(user_id)}",
            }
        )
    shown.sort(key=lambda entry: (-entry["scene_probability"], entry["scene"]))
    return {"user_id": user_id, "as_of": model.as_of.isoformat(), "entries": shown, "skipped": skipped}
