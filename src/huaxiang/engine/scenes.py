"""Scene templates: which ``scene_<slug>_score`` / ``scene_<slug>`` tags a ``scene: {name: "*"}`` makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from huaxiang.catalog import TagDef
from huaxiang.catalog.makers import TAG_ID, SceneSpec


@dataclass(frozen=True)
class PlannedScene:
    """One scene of a template: its value in the data, names and the ids of the tags it gets.

    An id is ``None`` when the catalog already defines a tag with it (the explicit tag wins).
    """

    value: str
    name_zh: str
    name_en: str
    score_id: str | None
    flag_id: str | None


@dataclass
class ScenePlan:
    """What a scene template makes: the scenes with tags, and the scene values it cannot use."""

    template: str
    scenes: list[PlannedScene] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    """Scene values whose two tags are both defined already (catalog or an earlier template)."""
    unusable: dict[str, str] = field(default_factory=dict)
    """Scene value -> why no tag id can be made from it."""

    def table(self) -> ir.Table:
        """The plan as rows for the manifest: scene, names, tag ids and a note."""
        rows: list[dict[str, Any]] = [
            {
                "scene": scene.value,
                "name_zh": scene.name_zh,
                "name_en": scene.name_en,
                "score_tag": scene.score_id,
                "flag_tag": scene.flag_id,
                "note": None,
            }
            for scene in self.scenes
        ]
        rows += [
            {
                "scene": value,
                "name_zh": None,
                "name_en": None,
                "score_tag": None,
                "flag_tag": None,
                "note": "both tags are defined already (in the catalog or by another template)",
            }
            for value in self.taken
        ]
        rows += [
            {
                "scene": value,
                "name_zh": None,
                "name_en": None,
                "score_tag": None,
                "flag_tag": None,
                "note": reason,
            }
            for value, reason in self.unusable.items()
        ]
        schema = dict.fromkeys(("scene", "name_zh", "name_en", "score_tag", "flag_tag", "note"), "string")
        return ibis.memtable(rows, schema=schema)


def plan_scene_tags(tag: TagDef, spec: SceneSpec, found: list[str], defined: set[str]) -> ScenePlan:
    """The tags a scene template makes for the scene values ``found`` in the data.

    Scene ``outing`` gets ``scene_outing_score`` (probability) and ``scene_outing``
    (boolean). The id part is ``labels[value].id`` when given, else the value with
    ``-`` written ``_``; a value that still is not snake_case (``郊游``) is unusable
    until a label gives it an id. Ids in ``defined`` (the catalog's, an earlier
    template's) are not made again.
    """
    plan = ScenePlan(tag.id)
    made: dict[str, str] = {}
    for value in found:
        label = spec.labels.get(value)
        part = label.id if label is not None and label.id is not None else value.replace("-", "_")
        score_id, flag_id = f"scene_{part}_score", f"scene_{part}"
        if not TAG_ID.match(flag_id):
            plan.unusable[value] = (
                f"scene {value!r} (products/content scene_tags) cannot form a tag id; give it one in "
                f"scene.labels, e.g. {{{value}: {{id: outing, name_zh: {value}}}}}"
            )
            continue
        if flag_id in made:
            plan.unusable[value] = (
                f"scene {value!r} would make {flag_id}, which scene {made[flag_id]!r} makes already; "
                "give one of them another id in scene.labels"
            )
            continue
        made[flag_id] = value
        name_zh = label.name_zh if label is not None and label.name_zh is not None else value
        default_en = value.replace("_", " ").replace("-", " ").capitalize()
        name_en = label.name_en if label is not None and label.name_en is not None else default_en
        planned = PlannedScene(
            value=value,
            name_zh=name_zh,
            name_en=name_en,
            score_id=None if score_id in defined else score_id,
            flag_id=None if flag_id in defined else flag_id,
        )
        if planned.score_id is None and planned.flag_id is None:
            plan.taken.append(value)
        else:
            plan.scenes.append(planned)
    return plan


__all__ = ["PlannedScene", "ScenePlan", "plan_scene_tags"]
