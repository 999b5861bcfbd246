"""The audience engine of a workspace: one snapshot's index plus the saved audiences.

Every operation takes a definition in any form (text, JSON object or text, a
tree, or ``@name`` for a saved audience), checks it against the snapshot's tags
and evaluates it on the bitmap index::

    engine = AudienceEngine("shop")                      # latest snapshot
    engine.estimate("rfm_class = '重要价值客户' AND city_tier IN (3, 4, 5, 6)").size
    engine.venn(["@dyson_fans", "scene_outing", "trait_impulsive"])
    engine.top("scene_outing", by="scene_outing_score", n=10_000)
"""

from __future__ import annotations

import datetime as dt
import getpass
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from huaxiang.audience import ops
from huaxiang.audience.definition import (
    InAudience,
    Node,
    check,
    parse,
    referenced_audiences,
    referenced_tags,
    to_json,
    to_text,
)
from huaxiang.audience.errors import AudienceError, DefinitionError, EmptyAudienceError
from huaxiang.audience.evaluate import evaluate, to_ibis
from huaxiang.audience.export import ExportResult, FileFormat, write_export
from huaxiang.audience.index import SnapshotIndex, bitmap_of, open_index
from huaxiang.audience.store import (
    METADATA_FILE,
    AudienceStore,
    ExportRecord,
    Kind,
    SavedAudience,
    default_url,
)

Definition = str | Mapping[str, Any] | Node
EXPORTS_DIR = "exports"


@dataclass(frozen=True)
class SizeRefresh:
    """Sizes recorded for the saved audiences in one snapshot, and the ones that failed (why)."""

    as_of: str
    sizes: dict[str, int]
    problems: dict[str, str]


@dataclass(frozen=True)
class Estimate:
    """The size of an audience in a snapshot, and how long the bitmap evaluation took."""

    text: str
    size: int
    users: int
    milliseconds: float

    @property
    def share(self) -> float:
        return self.size / self.users if self.users else 0.0


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no login name in some containers
        return "unknown"


class AudienceEngine:
    """Audiences over one snapshot of a workspace (the latest by default)."""

    def __init__(
        self,
        workspace_dir: str | Path,
        as_of: dt.date | None = None,
        *,
        database_url: str | None = None,
    ) -> None:
        from huaxiang.history import find_snapshot

        self.workspace_dir = Path(workspace_dir)
        self.snapshot = find_snapshot(self.workspace_dir, as_of)
        self.as_of = self.snapshot.as_of.isoformat()
        self.database_url = database_url or default_url(self.workspace_dir)
        self._resolving: list[str] = []

    @cached_property
    def index(self) -> SnapshotIndex:
        """The snapshot's bitmap index (built on first use when the snapshot has none)."""
        return open_index(self.snapshot.path)

    @cached_property
    def store(self) -> AudienceStore:
        return AudienceStore(self.database_url)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "index" in self.__dict__:
            self.index.close()

    # ------------------------------------------------------------------ definitions

    def definition(self, definition: Definition) -> Node:
        """Parse and check a definition (``@name`` is the saved audience ``name``)."""
        if isinstance(definition, str) and definition.strip().startswith("@"):
            node: Node = InAudience(definition.strip()[1:])
        else:
            node = parse(definition)
        # Only a definition that names saved audiences needs the metadata database.
        saved = self.store.names() if referenced_audiences(node) else []
        return check(node, self.index.specs, saved)

    def members(self, definition: Definition) -> BitMap:
        """The dense ids of the audience's members in this snapshot."""
        return evaluate(self.definition(definition), self.index, self._members_of)

    def user_ids(self, members: BitMap) -> list[str]:
        """User ids of dense ids, in user_id order."""
        return list(
            self.index.user_ids.take(pa.array(np.asarray(members.to_array(), dtype=np.uint32))).to_pylist()
        )

    def _members_of(self, name: str) -> BitMap:
        if name in self._resolving:
            chain = " -> ".join([*self._resolving, name])
            raise DefinitionError(f"saved audiences refer to each other in a circle: {chain}.")
        saved = self.store.get(name)
        if saved.kind == "static":
            ids = pa.array(self.store.members(name), pa.string())
            positions = pc.index_in(ids, value_set=self.index.user_ids).drop_null()
            return bitmap_of(np.asarray(positions.to_numpy(), dtype=np.uint32))
        self._resolving.append(name)
        try:
            return self.members(saved.definition)
        finally:
            self._resolving.pop()

    def _member_ids(self, name: str) -> list[str]:
        return self.user_ids(self._members_of(name))

    # ------------------------------------------------------------------ operations

    def estimate(self, definition: Definition) -> Estimate:
        """The audience's size (the definition is checked first; the time is the evaluation's)."""
        node = self.definition(definition)
        started = time.perf_counter()
        members = evaluate(node, self.index, self._members_of)
        elapsed = (time.perf_counter() - started) * 1000
        return Estimate(to_text(node), len(members), self.index.users, round(elapsed, 3))

    def venn(self, definitions: Sequence[Definition], names: Sequence[str] | None = None) -> ops.Venn:
        """Sizes of every region of the Venn diagram of 2-3 audiences (names default to A, B, C)."""
        if not 2 <= len(definitions) <= ops.MAX_VENN:
            raise AudienceError(f"a Venn diagram takes 2 or 3 audiences, got {len(definitions)}.")
        if names is None:
            names = [
                d.strip()[1:] if isinstance(d, str) and d.strip().startswith("@") else "ABC"[i]
                for i, d in enumerate(definitions)
            ]
        return ops.venn([self.members(d) for d in definitions], list(names), self.index.users)

    def exclude(self, definition: Definition, *exclusions: Definition) -> BitMap:
        """Members of ``definition`` in none of ``exclusions`` (e.g. recent buyers, a blacklist)."""
        return ops.exclude(self.members(definition), *(self.members(d) for d in exclusions))

    def top(self, definition: Definition, by: str, n: int, *, descending: bool = True) -> pa.Table:
        """The ``n`` members with the highest ``by`` (exact; ties by user_id); see :func:`ops.top_n`."""
        return ops.top_n(self.index, self.members(definition), by, n, descending=descending)

    def split(
        self,
        definition: Definition,
        ratios: Sequence[float],
        salt: str,
        *,
        names: Sequence[str] | None = None,
        stratify: str | None = None,
    ) -> ops.Split:
        """A stable random split of the members (see :func:`ops.split`)."""
        return ops.split(self.index, self.members(definition), ratios, salt, names=names, stratify=stratify)

    def sample(
        self, definition: Definition, n: int = 10, *, tags: Sequence[str] | None = None, seed: int = 0
    ) -> pa.Table:
        """Up to ``n`` random members with their key tags (default: the tags the definition reads)."""
        node = self.definition(definition)
        shown = list(tags) if tags else referenced_tags(node)
        members = evaluate(node, self.index, self._members_of)
        return ops.sample(self.index, self.snapshot.tags_path, members, n, shown, seed=seed)

    # ------------------------------------------------------------------ saved audiences

    def save(
        self,
        name: str,
        definition: Definition,
        *,
        kind: Kind = "dynamic",
        description: str | None = None,
        by: str | None = None,
        replace: bool = False,
    ) -> SavedAudience:
        """Save an audience: ``dynamic`` keeps the definition, ``static`` freezes today's members."""
        node = self.definition(definition)
        if name in _saved_names(node) or (replace and self._refers_to(node, name)):
            raise DefinitionError(
                f"audience '{name}' cannot be defined through itself (in_audience('{name}'))."
            )
        members = evaluate(node, self.index, self._members_of)
        return self.store.save(
            name,
            kind=kind,
            definition=to_json(node),
            text=to_text(node),
            as_of=self.as_of,
            size=len(members),
            users=self.index.users,
            members=self.user_ids(members) if kind == "static" else None,
            description=description,
            created_by=_who(by),
            replace=replace,
        )

    def _refers_to(self, node: Node, name: str) -> bool:
        seen: set[str] = set()
        pending = _saved_names(node)
        while pending:
            current = pending.pop()
            if current == name:
                return True
            if current in seen:
                continue
            seen.add(current)
            saved = self.store.get(current)
            if saved.kind == "dynamic":
                pending.extend(_saved_names(parse(saved.definition)))
        return False

    def all(self) -> list[SavedAudience]:
        return self.store.all()

    def refresh_sizes(self) -> SizeRefresh:
        """Evaluate every saved audience on this snapshot and record its size (what a build calls).

        An audience that no longer fits the snapshot (it reads a tag the build skipped,
        say) is listed in ``problems`` with the reason; the others are still recorded.
        """
        result = SizeRefresh(self.as_of, {}, {})
        for name in self.store.names():
            try:
                size = len(self._members_of(name))
            except AudienceError as error:
                result.problems[name] = str(error)
                continue
            self.store.record_size(name, self.as_of, size, self.index.users)
            result.sizes[name] = size
        return result

    # ------------------------------------------------------------------ export

    def export(
        self,
        definition: Definition,
        file_name: str,
        *,
        file_format: FileFormat | None = None,
        salt: str | None = None,
        by: str | None = None,
        overwrite: bool = False,
        folder: Path | None = None,
    ) -> ExportResult:
        """Write the members' ids (or salted SHA-256 of them) to ``DIR/exports/file_name`` and log it."""
        node = self.definition(definition)
        members = evaluate(node, self.index, self._members_of)
        ops.require_members(members, "export", self.index)
        return self.export_user_ids(
            self.user_ids(members),
            file_name,
            to_text(node),
            file_format=file_format,
            salt=salt,
            by=by,
            overwrite=overwrite,
            folder=folder,
        )

    def export_user_ids(
        self,
        user_ids: list[str],
        file_name: str,
        audience: str,
        *,
        file_format: FileFormat | None = None,
        salt: str | None = None,
        by: str | None = None,
        overwrite: bool = False,
        folder: Path | None = None,
        extra: dict[str, list[Any]] | None = None,
    ) -> ExportResult:
        """Write ``user_ids`` (e.g. a top-N list, in its order) and log the export as ``audience``.

        ``extra`` adds columns (e.g. the ``group`` of each user of a split).
        """
        if not user_ids:
            raise EmptyAudienceError("the audience is empty, so there is nothing to export.")
        result = write_export(
            user_ids,
            folder or self.workspace_dir / EXPORTS_DIR,
            file_name,
            file_format=file_format,
            salt=salt,
            overwrite=overwrite,
            extra=extra,
        )
        self.store.log_export(
            ExportRecord(
                exported_by=_who(by),
                exported_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
                audience=audience,
                as_of=self.as_of,
                rows=result.rows,
                file=str(result.path),
                file_format=result.file_format,
                id_mode=result.id_mode,
                sha256=result.sha256,
            )
        )
        return result

    # ------------------------------------------------------------------ parity

    def ibis_user_ids(self, definition: Definition) -> list[str]:
        """The audience as an Ibis filter over ``tags.parquet`` on DuckDB (for parity checks)."""
        node = self.definition(definition)
        hierarchical = frozenset(n for n, s in self.index.specs.items() if s.type == "hierarchical_enum")
        con = ibis.duckdb.connect()
        try:
            table = con.read_parquet(self.snapshot.tags_path)
            expr = to_ibis(node, table, self._member_ids, hierarchical)
            result = table.filter(expr).select("user_id").order_by("user_id").to_pyarrow()
        finally:
            con.disconnect()
        return list(result.column("user_id").to_pylist())


def _saved_names(node: Node) -> list[str]:
    return referenced_audiences(node)


def refresh_sizes(
    workspace_dir: str | Path, as_of: dt.date, *, database_url: str | None = None
) -> SizeRefresh:
    """Record every saved audience's size in the snapshot of ``as_of`` (call after a build publishes)."""
    engine = AudienceEngine(workspace_dir, as_of, database_url=database_url)
    try:
        if not (engine.workspace_dir / METADATA_FILE).exists() and database_url is None:
            return SizeRefresh(engine.as_of, {}, {})  # nothing saved yet: do not create the database
        return engine.refresh_sizes()
    finally:
        engine.close()
