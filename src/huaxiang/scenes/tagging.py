"""Scene tagging of products and content (场景打标): how strongly each belongs to a scene, and why.

Three sources, the strongest wins for each product and scene:

1. **own tags** — a product's (content's) ``scene_tags`` in the catalogue: strength 1.0;
2. **rules** — ``DIR/scenes/rules.yaml`` (or the standard rules shipped with huaxiang when
   the workspace has none): a rule names a scene, a strength in (0, 1] and any of
   ``category_l1``, ``category_l2``, ``category_l3``, ``brand`` (exact names) and
   ``keywords`` (words contained in the product name or content title). A product
   matches a rule when it matches every condition given and any value within one::

       - scene: outing
         category_l3: [木炭, 野餐垫, 帐篷, 烧烤炉]
         strength: 0.9
       - scene: outing
         keywords: [烧烤, 露营, 野餐, 登山包]
         strength: 0.7

3. **uploaded lists** — CSV files ``product_id,scene[,strength]`` (strength default 1.0) in
   ``DIR/scenes/lists/``, put there by ``huaxiang scenes tag-products --list FILE``; every
   bad row is reported with its line number and what to fix.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from huaxiang.errors import ConfigError
from huaxiang.yamlfile import load_yaml, validate_file

RULES_FILE = "rules.yaml"
LISTS_DIR = "lists"
SCENES_DIR = "scenes"
SLUG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class SceneRule(BaseModel):
    """One tagging rule (module doc)."""

    model_config = ConfigDict(extra="forbid")

    scene: str
    strength: float = Field(gt=0, le=1)
    category_l1: list[str] = []
    category_l2: list[str] = []
    category_l3: list[str] = []
    brand: list[str] = []
    keywords: list[str] = []

    @model_validator(mode="after")
    def _conditions(self) -> SceneRule:
        if not SLUG.match(self.scene):
            raise ValueError(
                f"scene {self.scene!r} is not a slug: lower-case letters, digits and _, e.g. outing."
            )
        if not (self.category_l1 or self.category_l2 or self.category_l3 or self.brand or self.keywords):
            raise ValueError(
                "a rule needs at least one of category_l1, category_l2, category_l3, brand, keywords."
            )
        return self

    def matches(
        self, l1: str | None, l2: str | None, l3: str | None, brand: str | None, text: str | None
    ) -> bool:
        for wanted, value in (
            (self.category_l1, l1),
            (self.category_l2, l2),
            (self.category_l3, l3),
            (self.brand, brand),
        ):
            if wanted and value not in wanted:
                return False
        return not self.keywords or (text is not None and any(word in text for word in self.keywords))


@dataclass(frozen=True)
class Tagged:
    """One product's or content item's strength for one scene, and the source that gave it."""

    key: str
    scene: str
    strength: float
    source: str  # "own", "rule", "list"


class RulesFile(BaseModel):
    """``scenes/rules.yaml``: ``rules:`` followed by a list of :class:`SceneRule`."""

    model_config = ConfigDict(extra="forbid")

    rules: list[SceneRule] = []


def standard_file(name: str) -> Path:
    """A file of the standard scene definitions shipped in ``huaxiang/templates/scenes``."""
    return Path(str(resources.files("huaxiang.templates").joinpath(SCENES_DIR, name)))


def load_rules(workspace: str | Path) -> list[SceneRule]:
    """The workspace's ``scenes/rules.yaml``, or the standard rules when it has none."""
    path = Path(workspace) / SCENES_DIR / RULES_FILE
    if not path.is_file():
        path = standard_file(RULES_FILE)
    data, node = load_yaml(path)
    return validate_file(path, RulesFile, data if data is not None else {}, node).rules


def read_scene_list(path: str | Path, known_products: Iterable[str] | None = None) -> list[Tagged]:
    """An uploaded ``product_id,scene[,strength]`` CSV; every bad row is reported at once.

    A header row is required. ``known_products`` (when given) makes an unknown product id
    an error too.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text; save the list as UTF-8 CSV.") from None
    return parse_scene_list(text, str(source), known_products)


def parse_scene_list(text: str, where: str, known_products: Iterable[str] | None = None) -> list[Tagged]:
    """See :func:`read_scene_list`."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    columns = [name.strip().lower() for name in header or []]
    if columns[:2] != ["product_id", "scene"] or columns[2:] not in ([], ["strength"]):
        raise ConfigError(
            f"{where}: line 1 must be the header 'product_id,scene' or 'product_id,scene,strength', "
            f"got {','.join(header or []) or 'nothing'!r}."
        )
    known = set(known_products) if known_products is not None else None
    found: list[Tagged] = []
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            problems.append(
                f"line {line}: expected {len(columns)} fields ({','.join(columns)}), got {len(row)}."
            )
            continue
        product, scene = row[0].strip(), row[1].strip()
        if not product:
            problems.append(f"line {line}: product_id is empty.")
            continue
        if known is not None and product not in known:
            problems.append(f"line {line}: product_id {product!r} is not in the products table.")
            continue
        if not SLUG.match(scene):
            problems.append(
                f"line {line}: scene {scene!r} is not a slug (lower-case letters, digits and _, e.g. outing)."
            )
            continue
        strength = 1.0
        if len(row) == 3 and row[2].strip():
            try:
                strength = float(row[2])
            except ValueError:
                problems.append(f"line {line}: strength {row[2]!r} is not a number; give one in (0, 1].")
                continue
            if not 0 < strength <= 1:
                problems.append(f"line {line}: strength {strength:g} is outside (0, 1].")
                continue
        found.append(Tagged(product, scene, strength, "list"))
    if problems:
        shown = problems[:20]
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ConfigError(f"{where}: {len(problems)} bad row(s):\n" + "\n".join(shown) + more)
    return found


def uploaded_lists(workspace: str | Path, known_products: Iterable[str] | None = None) -> list[Tagged]:
    """Every list in ``DIR/scenes/lists/*.csv``, in file-name order."""
    folder = Path(workspace) / SCENES_DIR / LISTS_DIR
    known = set(known_products) if known_products is not None else None
    found: list[Tagged] = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        found += read_scene_list(path, known)
    return found


def strengths(
    keys: Sequence[str],
    own: Sequence[Sequence[str] | None],
    levels: Sequence[tuple[str | None, str | None, str | None]] | None,
    brands: Sequence[str | None] | None,
    texts: Sequence[str | None],
    rules: Sequence[SceneRule],
    listed: Sequence[Tagged] = (),
) -> dict[str, dict[str, Tagged]]:
    """``scene -> key -> Tagged``: the strongest source for every product (or content) and scene.

    ``levels`` and ``brands`` are None for content (category and brand rules never match it).
    """
    best: dict[str, dict[str, Tagged]] = {}

    def offer(found: Tagged) -> None:
        current = best.setdefault(found.scene, {}).get(found.key)
        if current is None or found.strength > current.strength:
            best[found.scene][found.key] = found

    for position, key in enumerate(keys):
        for scene in own[position] or ():
            if scene:
                offer(Tagged(key, scene, 1.0, "own"))
        l1, l2, l3 = levels[position] if levels is not None else (None, None, None)
        brand = brands[position] if brands is not None else None
        for rule in rules:
            if levels is None and (rule.category_l1 or rule.category_l2 or rule.category_l3 or rule.brand):
                continue
            if rule.matches(l1, l2, l3, brand, texts[position]):
                offer(Tagged(key, rule.scene, rule.strength, "rule"))
    for item in listed:
        offer(item)
    return best


def tag_products(workspace: str | Path) -> dict[str, dict[str, Tagged]]:
    """``scene -> product_id -> Tagged`` for the products table of a workspace (no snapshot needed)."""
    import pyarrow.parquet as pq

    from huaxiang.errors import WorkspaceError

    path = Path(workspace) / "data" / "products.parquet"
    if not path.is_file():
        raise WorkspaceError(f"no products table in {workspace}; run 'huaxiang ingest -w {workspace}' first.")
    table = pq.read_table(path)
    names = set(table.column_names)

    def column(name: str) -> list[Any]:
        return table.column(name).to_pylist() if name in names else [None] * table.num_rows

    keys = [str(v) for v in column("product_id")]
    levels = list(zip(column("category_l1"), column("category_l2"), column("category_l3"), strict=True))
    return strengths(
        keys,
        column("scene_tags"),
        levels,
        column("brand"),
        column("name"),
        load_rules(workspace),
        uploaded_lists(workspace, keys),
    )


def summary(tagged: dict[str, dict[str, Tagged]]) -> dict[str, dict[str, int]]:
    """``scene -> source -> count`` of what won."""
    counts: dict[str, dict[str, int]] = {}
    for scene, by_key in sorted(tagged.items()):
        per = counts.setdefault(scene, {"own": 0, "rule": 0, "list": 0})
        for found in by_key.values():
            per[found.source] += 1
    return counts
