"""Scene pages (场景页面, seed 001): scene tagging of products, pages ranked per user, entries.

- :mod:`~huaxiang.scenes.tagging`: product and content scene strength (own tags, rules, lists).
- :mod:`~huaxiang.scenes.pages`: page definitions (``DIR/scenes/*.yaml``) and the ranking rule.
- :mod:`~huaxiang.scenes.model`: :class:`SceneModel`, everything precomputed per snapshot.
- :mod:`~huaxiang.scenes.entries`: which pages' entries a user sees.
- :mod:`~huaxiang.scenes.online`: :func:`scene_page` for the console and the API.

See docs/scenes.md.
"""

from huaxiang.scenes.entries import entries
from huaxiang.scenes.model import SceneModel, model_for_workspace
from huaxiang.scenes.online import scene_model, scene_page
from huaxiang.scenes.pages import FORMULA, PageDefinition, Weights, Widget, install_standard_pages, load_pages
from huaxiang.scenes.tagging import SceneRule, Tagged, load_rules, read_scene_list

__all__ = [
    "FORMULA",
    "PageDefinition",
    "SceneModel",
    "SceneRule",
    "Tagged",
    "Weights",
    "Widget",
    "entries",
    "install_standard_pages",
    "load_pages",
    "load_rules",
    "model_for_workspace",
    "read_scene_list",
    "scene_model",
    "scene_page",
]
