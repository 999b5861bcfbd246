"""Audiences (人群圈选): a bitmap index per snapshot, definitions over tags, and what to do with them.

- :mod:`~huaxiang.audience.index`: the RoaringBitmap index of a snapshot, read lazily.
- :mod:`~huaxiang.audience.build`: building it (:func:`build_index`, :func:`build_index_from_table`).
- :mod:`~huaxiang.audience.definition`: the definition tree, its JSON and text forms, checking.
- :mod:`~huaxiang.audience.evaluate`: evaluation on the index, and the same tree as an Ibis filter.
- :mod:`~huaxiang.audience.ops`: Venn regions, exclusion, top N, stable splits, samples.
- :mod:`~huaxiang.audience.store`: saved audiences (static / dynamic), size history, export log.
- :mod:`~huaxiang.audience.export`: CSV / Parquet exports of plain or salted-hashed ids.
- :mod:`~huaxiang.audience.engine`: :class:`AudienceEngine`, all of it over one workspace snapshot.
- :mod:`~huaxiang.audience.clickhouse`: the same definitions as ClickHouse bitmap SQL
  (:func:`to_clickhouse`, the tag and bitmap tables' DDL).

See docs/audiences.md.
"""

from huaxiang.audience.build import IndexReport, build_index, build_index_from_table
from huaxiang.audience.clickhouse import bitmap_table_sql, tag_table_sql, to_clickhouse
from huaxiang.audience.definition import (
    MAX_DEPTH,
    And,
    Condition,
    InAudience,
    Node,
    Not,
    Or,
    TagSpec,
    check,
    from_json,
    from_text,
    parse,
    to_json,
    to_text,
)
from huaxiang.audience.engine import AudienceEngine, Estimate, SizeRefresh, refresh_sizes
from huaxiang.audience.errors import (
    AudienceError,
    AudienceNotFoundError,
    DefinitionError,
    EmptyAudienceError,
    ExportError,
)
from huaxiang.audience.evaluate import evaluate, to_ibis
from huaxiang.audience.index import SnapshotIndex, open_index
from huaxiang.audience.ops import Split, Venn, exclude, sample, split, top_n, venn
from huaxiang.audience.store import AudienceStore, SavedAudience

__all__ = [
    "MAX_DEPTH",
    "And",
    "AudienceEngine",
    "AudienceError",
    "AudienceNotFoundError",
    "AudienceStore",
    "Condition",
    "DefinitionError",
    "EmptyAudienceError",
    "Estimate",
    "ExportError",
    "InAudience",
    "IndexReport",
    "Node",
    "Not",
    "Or",
    "SavedAudience",
    "SizeRefresh",
    "SnapshotIndex",
    "Split",
    "TagSpec",
    "Venn",
    "bitmap_table_sql",
    "build_index",
    "build_index_from_table",
    "check",
    "evaluate",
    "exclude",
    "from_json",
    "from_text",
    "open_index",
    "parse",
    "refresh_sizes",
    "sample",
    "split",
    "tag_table_sql",
    "to_clickhouse",
    "to_ibis",
    "to_json",
    "to_text",
    "top_n",
    "venn",
]
