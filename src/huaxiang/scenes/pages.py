"""Scene page definitions (场景页面) and how each widget ranks its candidates for a viewing user.

A page is one YAML file in ``DIR/scenes/`` (any name but ``rules.yaml``); the standard
pages shipped in ``huaxiang/templates/scenes/`` (郊游 outing) are used for every scene
the workspace does not define itself::

    scene: outing
    name_zh: 郊游季
    name_en: Outing season
    audience: "scene_outing_score >= 0.3"     # optional: who else sees the entry
    weights: {discount: 0.6}                  # optional: override the default weights
    widgets:
      - {id: hot, kind: hot, title_zh: 爆款, title_en: Best sellers, size: 6}
      - {id: coupons, kind: coupons, title_zh: 领券, title_en: Coupons,
         coupons: [{id: OUT50, name_zh: 满300减50, threshold: 300, amount: 50, category: 户外}]}

**Widget kinds and their candidates.** *Scene products* are those whose scene strength
(:mod:`huaxiang.scenes.tagging`) is at least the widget's ``min_strength`` (0.3).

- ``promoted`` 主推: the ``products`` listed, else scene products with a discount depth
  of at least ``min_discount`` (0.1);
- ``hot`` 爆款: the most popular ``hot_share`` (20 %) of the scene products;
- ``presale`` 预售: the ``products`` listed (required);
- ``ordinary`` 常规: every scene product;
- ``long_tail`` 长尾: the least popular ``long_tail_share`` (50 %) of the scene products;
- ``coupons`` 优惠券: the ``coupons`` listed (required);
- ``content`` 内容: content whose scene strength is at least ``min_strength``.

A listed product counts as a full scene match (1.0) on its page.

**The score** of candidate ``i`` for user ``u`` on the page of scene ``s``::

    score = w_scene_match · S(i) + w_popularity · P(i) + w_discount · D(i)
          + w_category_affinity · A_cat(u, i) + w_brand_affinity · A_brand(u, i)
          + w_scene_interest · p(u, s) · S(i)

``S`` scene strength, ``P`` popularity, ``D`` discount depth, ``A_cat`` / ``A_brand`` the
user's category / brand affinity (1 for the favourite; :mod:`huaxiang.recs.data`),
``p(u, s)`` the user's scene probability (tag ``scene_<s>_score``). Default weights:
scene_match 1.0, popularity 0.6, discount 0.4, category_affinity 0.8, brand_affinity 0.4,
scene_interest 0.5; a page's ``weights`` override them and a widget's override the page's.
For content, ``D = 0`` and the affinities are the best over the products it links; for a
coupon, ``S = 1``, ``P = 0``, ``D = amount / threshold``, ``A_cat`` the best affinity in its
``category`` (any level) and ``A_brand`` the affinity to its ``brand``.

**Order and diversity.** Candidates are sorted by score (ties: popularity, then id);
widgets are filled in the order written, a product appears at most once on a page, and
no brand takes more than ``max_per_brand`` (2) places in one widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from huaxiang.errors import ConfigError, did_you_mean
from huaxiang.recs.data import FloatArray, IntArray
from huaxiang.scenes.tagging import RULES_FILE, SCENES_DIR, SLUG, standard_file
from huaxiang.yamlfile import load_yaml, validate_file

WidgetKind = Literal["promoted", "hot", "presale", "ordinary", "long_tail", "coupons", "content"]
COMPONENTS = (
    "scene_match",
    "popularity",
    "discount",
    "category_affinity",
    "brand_affinity",
    "scene_interest",
)
FORMULA = (
    "score = w_scene_match*S + w_popularity*P + w_discount*D + w_category_affinity*A_cat "
    "+ w_brand_affinity*A_brand + w_scene_interest*p_user*S"
)


class Weights(BaseModel):
    """The weights of the score (module doc)."""

    model_config = ConfigDict(extra="forbid")

    scene_match: float = Field(1.0, ge=0)
    popularity: float = Field(0.6, ge=0)
    discount: float = Field(0.4, ge=0)
    category_affinity: float = Field(0.8, ge=0)
    brand_affinity: float = Field(0.4, ge=0)
    scene_interest: float = Field(0.5, ge=0)


class WeightOverride(BaseModel):
    """Some of the weights, overriding the page's (or the defaults)."""

    model_config = ConfigDict(extra="forbid")

    scene_match: float | None = Field(None, ge=0)
    popularity: float | None = Field(None, ge=0)
    discount: float | None = Field(None, ge=0)
    category_affinity: float | None = Field(None, ge=0)
    brand_affinity: float | None = Field(None, ge=0)
    scene_interest: float | None = Field(None, ge=0)

    def over(self, base: Weights) -> Weights:
        return base.model_copy(update=self.model_dump(exclude_none=True))


class Coupon(BaseModel):
    """A coupon shown in a ``coupons`` widget: 满 ``threshold`` 减 ``amount``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name_zh: str
    name_en: str = ""
    threshold: float = Field(gt=0)
    amount: float = Field(gt=0)
    category: str | None = None
    brand: str | None = None


class Widget(BaseModel):
    """One widget of a page (module doc)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: WidgetKind
    title_zh: str
    title_en: str = ""
    size: int = Field(6, ge=1, le=50)
    max_per_brand: int = Field(2, ge=1)
    min_strength: float = Field(0.3, ge=0, le=1)
    min_discount: float = Field(0.1, ge=0, le=1)
    hot_share: float = Field(0.2, gt=0, le=1)
    long_tail_share: float = Field(0.5, gt=0, le=1)
    products: list[str] = []
    coupons: list[Coupon] = []
    weights: WeightOverride | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> Widget:
        if not SLUG.match(self.id):
            raise ValueError(f"widget id {self.id!r} is not a slug: lower-case letters, digits and _.")
        if self.kind == "coupons" and not self.coupons:
            raise ValueError("a coupons widget needs a list of coupons (id, name_zh, threshold, amount).")
        if self.kind != "coupons" and self.coupons:
            raise ValueError(f"only a coupons widget lists coupons; this one is {self.kind}.")
        if self.kind == "presale" and not self.products:
            raise ValueError("a presale widget needs the products on presale: products: [P000123, ...].")
        if self.kind in ("coupons", "content", "hot", "long_tail", "ordinary") and self.products:
            raise ValueError(
                f"a {self.kind} widget picks its own candidates; only promoted and presale list products."
            )
        return self


class PageDefinition(BaseModel):
    """A scene page: the scene, its names, who sees its entry, weights and widgets."""

    model_config = ConfigDict(extra="forbid")

    scene: str
    name_zh: str
    name_en: str = ""
    enabled: bool = True
    audience: str | None = None
    weights: Weights = Weights()
    widgets: list[Widget] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PageDefinition:
        if not SLUG.match(self.scene):
            raise ValueError(
                f"scene {self.scene!r} is not a slug: lower-case letters, digits and _, e.g. outing."
            )
        seen: set[str] = set()
        for widget in self.widgets:
            if widget.id in seen:
                raise ValueError(f"two widgets have the id {widget.id!r}; give each a different id.")
            seen.add(widget.id)
        return self

    def weights_of(self, widget: Widget) -> Weights:
        return widget.weights.over(self.weights) if widget.weights is not None else self.weights


@dataclass(frozen=True)
class PageFile:
    """A page definition and the file it came from (``standard`` for the shipped ones)."""

    page: PageDefinition
    path: Path
    standard: bool


def load_pages(workspace: str | Path) -> dict[str, PageFile | ConfigError]:
    """Every page by scene: the workspace's ``scenes/*.yaml`` over the standard pages.

    A file that does not validate gives its :class:`ConfigError` under the file's stem, so one
    broken page does not hide the others; two files for one scene are an error of both.
    """
    found: dict[str, PageFile | ConfigError] = {}
    standard_dir = standard_file(RULES_FILE).parent
    for path in sorted(standard_dir.glob("*.yaml")):
        if path.name != RULES_FILE:
            page = _read(path)
            if isinstance(page, PageDefinition):
                found[page.scene] = PageFile(page, path, True)
    folder = Path(workspace) / SCENES_DIR
    own: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        if path.name == RULES_FILE:
            continue
        page = _read(path)
        if isinstance(page, ConfigError):
            found[path.stem] = page
            continue
        if page.scene in own:
            found[page.scene] = ConfigError(
                f"{own[page.scene].name} and {path.name} both define the page of scene '{page.scene}'; "
                "keep one."
            )
            continue
        own[page.scene] = path
        found[page.scene] = PageFile(page, path, False)
    return found


def install_standard_pages(workspace: str | Path) -> list[Path]:
    """Copy the standard scene files (pages and ``rules.yaml``) into ``DIR/scenes/``, keeping files
    already there; the paths written. Without them the standard ones apply anyway."""
    target = Path(workspace) / SCENES_DIR
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path in sorted(standard_file(RULES_FILE).parent.glob("*.yaml")):
        destination = target / path.name
        if not destination.exists():
            destination.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
            written.append(destination)
    return written


def _read(path: Path) -> PageDefinition | ConfigError:
    try:
        data, node = load_yaml(path)
        return validate_file(path, PageDefinition, data if data is not None else {}, node)
    except ConfigError as error:
        return error


def unknown_scene(scene: str, pages: Sequence[str]) -> str:
    return (
        f"no page is defined for scene '{scene}'.{did_you_mean(scene, pages)} "
        f"Pages: {', '.join(sorted(pages)) or 'none'}. Define one in DIR/{SCENES_DIR}/{scene}.yaml "
        "(docs/scenes.md)."
    )


def scores(weights: Weights, parts: dict[str, FloatArray]) -> FloatArray:
    """The score of every candidate from its components (module doc)."""
    return (
        weights.scene_match * parts["scene_match"]
        + weights.popularity * parts["popularity"]
        + weights.discount * parts["discount"]
        + weights.category_affinity * parts["category_affinity"]
        + weights.brand_affinity * parts["brand_affinity"]
        + weights.scene_interest * parts["scene_interest"]
    )


def ranked(
    keys: Sequence[str],
    score: FloatArray,
    popularity: FloatArray,
    brands: Sequence[str | None],
    *,
    size: int,
    max_per_brand: int,
    taken: set[str],
) -> list[int]:
    """Positions of the chosen candidates: best score first, at most ``max_per_brand`` per brand,
    none already ``taken`` on the page (those chosen are added to it)."""
    order = sorted(range(len(keys)), key=lambda p: (-score[p], -popularity[p], keys[p]))
    chosen: list[int] = []
    per_brand: dict[str, int] = {}
    for position in order:
        key = keys[position]
        if key in taken:
            continue
        brand = brands[position]
        if brand is not None and per_brand.get(brand, 0) >= max_per_brand:
            continue
        chosen.append(position)
        taken.add(key)
        if brand is not None:
            per_brand[brand] = per_brand.get(brand, 0) + 1
        if len(chosen) == size:
            break
    return chosen


def share_of(candidates: IntArray, popularity: FloatArray, share: float, *, top: bool) -> IntArray:
    """The most (``top``) or least popular ``share`` of the candidates (at least one)."""
    if len(candidates) == 0:
        return candidates
    count = max(1, int(np.ceil(share * len(candidates))))
    order = np.lexsort((candidates, -popularity[candidates] if top else popularity[candidates]))
    return candidates[order[:count]]
