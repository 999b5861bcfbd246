"""What a catalog change will do to the next build: ``huaxiang tags plan`` (Feast's ``plan``).

The current catalog (``tags/``) is compared with the ``definitions`` the latest
snapshot's manifest recorded (each tag's definition hash and what it reads):

- **added**: in the catalog, not in the snapshot's catalog;
- **removed**: in the snapshot's catalog only (its column disappears);
- **changed**: the definition hash differs (any field: rule, window, names ...);
- **rebuilt**: unchanged, but reads a changed tag directly or through others, so
  its values may change too;
- **unchanged**: the rest (same data → same values).

The build always recomputes every tag from the data; the plan says which values
a catalog change can move. With the workspace data at hand it also lists the
tags the build will **skip** and why (missing inputs), exactly as the build
decides (the catalog is compiled lazily over the canonical tables; nothing runs
but a count of non-null values per column).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from huaxiang.catalog.loader import Catalog
from huaxiang.errors import WorkspaceError


@dataclass(frozen=True)
class CatalogPlan:
    """The difference between the catalog and the snapshot of ``as_of`` (``None``: no snapshot yet)."""

    catalog_hash: str
    as_of: dt.date | None
    snapshot_catalog_hash: str | None
    added: list[str]
    removed: list[str]
    changed: list[str]
    rebuilt: dict[str, list[str]]
    """Tag -> the changed tags it reads (directly or through others), in build order."""
    unchanged: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    """Tags the next build will skip, with the reason (when the data was checked)."""

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat() if self.as_of else None
        return data


def plan_catalog(
    catalog: Catalog, manifest: dict[str, Any] | None, *, skipped: dict[str, str] | None = None
) -> CatalogPlan:
    """Compare ``catalog`` with a snapshot's ``manifest`` (``None``: every tag is added).

    Raises
    ------
    huaxiang.errors.WorkspaceError
        The manifest predates ``definitions`` and the catalog hash differs: there is
        nothing to compare tag by tag (rebuild the snapshot once).
    """
    if manifest is None:
        return CatalogPlan(catalog.hash, None, None, list(catalog.order), [], [], {}, [], dict(skipped or {}))
    as_of = dt.date.fromisoformat(manifest["as_of"])
    recorded: dict[str, dict[str, Any]] | None = manifest.get("definitions")
    if recorded is None:
        if manifest.get("catalog_hash") == catalog.hash:
            recorded = {tag.id: {"hash": tag.definition_hash} for tag in catalog}
        else:
            raise WorkspaceError(
                f"the snapshot of {as_of} was built before huaxiang recorded each tag's definition in "
                "the manifest, and the catalog has changed since; the plan cannot tell which tags "
                f"changed. Rebuild that snapshot once (huaxiang build --as-of {as_of})."
            )
    added = [tag_id for tag_id in catalog.order if tag_id not in recorded]
    removed = [tag_id for tag_id in recorded if tag_id not in catalog.tags]
    changed = [
        tag_id
        for tag_id in catalog.order
        if tag_id in recorded and recorded[tag_id].get("hash") != catalog.tags[tag_id].definition_hash
    ]
    moved = set(added) | set(changed)
    rebuilt: dict[str, list[str]] = {}
    for source in changed:
        for tag_id in catalog.dependents(source, transitive=True):
            if tag_id not in moved:
                rebuilt.setdefault(tag_id, []).append(source)
    rebuilt = {tag_id: rebuilt[tag_id] for tag_id in catalog.order if tag_id in rebuilt}
    unchanged = [tag_id for tag_id in catalog.order if tag_id not in moved and tag_id not in rebuilt]
    return CatalogPlan(
        catalog_hash=catalog.hash,
        as_of=as_of,
        snapshot_catalog_hash=manifest.get("catalog_hash"),
        added=added,
        removed=removed,
        changed=changed,
        rebuilt=rebuilt,
        unchanged=unchanged,
        skipped=dict(skipped or {}),
    )


def predicted_skips(workspace_dir: str | Path, catalog: Catalog, as_of: dt.date) -> dict[str, str]:
    """The tags a build of ``workspace_dir`` as of ``as_of`` would skip, with the build's reasons.

    Empty when the workspace has no ingested data (``data/``): there is nothing to check.
    """
    from huaxiang.config import CONFIG_FILE, load_config
    from huaxiang.engine.build import connect, drop_empty_columns, read_tables
    from huaxiang.engine.compile import compile_catalog, cut_tables
    from huaxiang.engine.registry import BuildSettings

    root = Path(workspace_dir)
    if not (root / "data" / "users.parquet").is_file():
        return {}
    config = load_config(root) if (root / CONFIG_FILE).is_file() else None
    con = connect(config, root)
    try:
        present, _ = drop_empty_columns(con, read_tables(con, root / "data"), root / "data")
        compiled = compile_catalog(
            catalog, cut_tables(present, as_of), as_of, settings=BuildSettings.from_config(config)
        )
        return dict(compiled.skipped)
    finally:
        con.disconnect()
