"""A synthetic snapshot with every kind of tag at realistic densities, for tests and benchmarks.

:func:`synthetic_snapshot` writes ``DIR/snapshots/DATE/tags.parquet`` and a
``manifest.json`` with the tags' definitions, the way the tag engine publishes
a snapshot, so the audience engine can be exercised at any size (10M users take
a few seconds) without ingesting and building a shop. :func:`synthetic_index`
writes the bitmap index of the same users directly, one tag at a time, for sizes
whose tags table does not fit in memory (10⁸ users: about 9 minutes with a
5.6 GiB peak on a 2-core machine; bench/bench_audience.py ``--index-only``). Tags:

==================  =================  ==============================================
tag                 type               values
==================  =================  ==============================================
is_member           boolean            30 % true, 5 % null
viewed_dyson_30d    boolean            2 % true (sparse, as action tags are)
segment             enum               vip / regular / new / lapsed (skewed), 10 % null;
                                       the catalog also declares ``dormant`` (never seen)
finance_group       hierarchical_enum  千禧一代/精英青年, 千禧一代/有为青年, 家庭/中产家庭,
                                       家庭/无孩小资, 其他人群; 3 % null
city_tier           integer            1-6 (tiers 3-6 most common), 8 % null
age                 integer            16-70
outing_score        probability        0-1 in steps of 0.01 (many ties), 20 % null
spend_365d          number (decimal)   decimal(18, 2), log-normal yuan, 15 % null
margin              number             float, negative too, 5 % null
==================  =================  ==============================================
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyroaring import BitMap

from huaxiang.audience import index as layout
from huaxiang.audience.build import _prepare, bucket_size
from huaxiang.audience.errors import AudienceError
from huaxiang.audience.index import bitmap_of

AS_OF = dt.date(2026, 10, 31)
SEGMENTS = ("vip", "regular", "new", "lapsed")
FINANCE_GROUPS = ("千禧一代/精英青年", "千禧一代/有为青年", "家庭/中产家庭", "家庭/无孩小资", "其他人群")
USERS_CHUNK = 10_000_000
"""Users written to ``users.parquet`` at a time by :func:`synthetic_index`."""

DEFINITIONS: dict[str, dict[str, Any]] = {
    "is_member": {"type": "boolean", "name_zh": "会员", "name_en": "Member"},
    "viewed_dyson_30d": {"type": "boolean", "name_zh": "30天浏览戴森", "name_en": "Viewed Dyson (30 days)"},
    "segment": {
        "type": "enum",
        "name_zh": "客群",
        "name_en": "Segment",
        "values": [{"value": v} for v in ("vip", "regular", "new", "lapsed", "dormant")],
    },
    "finance_group": {
        "type": "hierarchical_enum",
        "name_zh": "金融人群",
        "name_en": "Finance group",
        "values": [
            {"value": v}
            for v in ("千禧一代/精英青年", "千禧一代/有为青年", "家庭/中产家庭", "家庭/无孩小资", "其他人群")
        ],
    },
    "city_tier": {"type": "integer", "name_zh": "城市等级", "name_en": "City tier"},
    "age": {"type": "integer", "name_zh": "年龄", "name_en": "Age"},
    "outing_score": {"type": "probability", "name_zh": "郊游概率", "name_en": "Outing probability"},
    "spend_365d": {"type": "number", "name_zh": "年消费", "name_en": "Spend (365 days)"},
    "margin": {"type": "number", "name_zh": "毛利", "name_en": "Margin"},
}


@dataclass(frozen=True)
class _Column:
    """One synthetic tag as numpy data: values (codes into ``labels`` for enums) and a null mask."""

    name: str
    values: npt.NDArray[Any]
    nulls: npt.NDArray[np.bool_] | None = None
    labels: tuple[str, ...] | None = None

    def to_arrow(self, *, dictionary: bool = False) -> pa.Array:
        """The column as Arrow (enums as strings, or as a dictionary array with ``dictionary``)."""
        if self.labels is not None:
            codes = pa.array(self.values.astype(np.int8), mask=self.nulls)
            encoded = pa.DictionaryArray.from_arrays(codes, pa.array(self.labels, pa.string()))
            return encoded if dictionary else encoded.cast(pa.string())
        return pa.array(self.values, mask=self.nulls)


def _columns(users: int, seed: int) -> Iterator[_Column]:
    """The synthetic tags one at a time (what :func:`synthetic_tags` and :func:`synthetic_index` share).

    The random draws happen in a fixed order, so a seed gives the same users in both.
    """
    rng = np.random.default_rng(seed)

    def nulls(share: float) -> npt.NDArray[np.bool_]:
        return rng.random(users) < share

    # No locals: the generator's frame would keep each column alive until the end.
    yield _Column(
        "spend_365d",
        np.round(rng.lognormal(mean=7.0, sigma=1.2, size=users) * 100).astype(np.int64),
        nulls(0.15),
    )
    yield _Column("is_member", rng.random(users) < 0.30, nulls(0.05))
    yield _Column("viewed_dyson_30d", rng.random(users) < 0.02)
    yield _Column(
        "segment",
        rng.choice(4, size=users, p=[0.05, 0.55, 0.25, 0.15]).astype(np.int8),
        nulls(0.10),
        SEGMENTS,
    )
    yield _Column(
        "finance_group",
        rng.choice(5, size=users, p=[0.1, 0.25, 0.2, 0.15, 0.3]).astype(np.int8),
        nulls(0.03),
        FINANCE_GROUPS,
    )
    yield _Column(
        "city_tier",
        rng.choice(np.arange(1, 7), size=users, p=[0.08, 0.12, 0.25, 0.25, 0.18, 0.12]),
        nulls(0.08),
    )
    yield _Column("age", rng.integers(16, 71, size=users))
    yield _Column("outing_score", np.round(rng.beta(1.2, 4.0, size=users), 2), nulls(0.20))
    yield _Column("margin", np.round(rng.normal(20.0, 40.0, size=users), 3), nulls(0.05))


def _decimal_cents(column: _Column) -> pa.Array:
    """decimal(18, 2) from unscaled int64 cents: 16-byte little-endian words (low, sign-extended high)."""
    cents = column.values
    words = np.stack([cents, cents >> 63], axis=1)
    spend = pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words.tobytes())])
    return pc.if_else(pa.array(column.nulls), pa.scalar(None, pa.decimal128(18, 2)), spend)


def user_ids(first: int, stop: int, users: int) -> pa.Array:
    """User ids ``U00000001`` ... of users ``first`` to ``stop - 1`` (0-based) of ``users``."""
    width = max(8, len(str(users)))
    numbers = pc.cast(pa.array(np.arange(first + 1, stop + 1, dtype=np.int64)), pa.string())
    padded = pc.utf8_lpad(numbers, width, padding="0")
    return pc.binary_join_element_wise("U", padded, "")


def synthetic_tags(users: int, seed: int = 7) -> pa.Table:
    """The synthetic tags table (one row per user, ordered by ``user_id``)."""
    made = {column.name: column for column in _columns(users, seed)}
    arrays: dict[str, pa.Array] = {"user_id": user_ids(0, users, users)}
    for name in DEFINITIONS:
        column = made[name]
        arrays[name] = _decimal_cents(column) if name == "spend_365d" else column.to_arrow()
    return pa.table(arrays)


def synthetic_snapshot(
    workspace_dir: str | Path, users: int, *, seed: int = 7, as_of: dt.date = AS_OF
) -> Path:
    """Write a synthetic snapshot into ``workspace_dir/snapshots/AS_OF``; its folder."""
    folder = Path(workspace_dir) / "snapshots" / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(synthetic_tags(users, seed), folder / "tags.parquet")
    manifest = {"as_of": as_of.isoformat(), "rows": {"users": users}, "definitions": DEFINITIONS}
    (folder / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return folder


def synthetic_index(workspace_dir: str | Path, users: int, *, seed: int = 7, as_of: dt.date = AS_OF) -> Path:
    """Write the bitmap index of the synthetic snapshot directly, without ``tags.parquet``; its folder.

    The users are those of :func:`synthetic_snapshot` with the same ``users`` and
    ``seed`` (the same draws), and the index is what :func:`huaxiang.audience.build_index`
    builds from that snapshot (the same layout, read by :class:`huaxiang.audience.SnapshotIndex`).
    It is made one tag at a time, so 10⁸ users fit in a few GB of memory where the
    snapshot's table would not. The folder is ``workspace_dir/snapshots/AS_OF/index``
    (with a ``manifest.json`` beside it, but no ``tags.parquet``: it is not a published
    snapshot, and ``AudienceEngine`` does not open it; use ``SnapshotIndex`` on it).
    """
    if users >= 2**32 - 1:
        raise AudienceError(f"{users:,} users do not fit uint32 dense ids.")
    snapshot = Path(workspace_dir) / "snapshots" / as_of.isoformat()
    target = snapshot / layout.INDEX_DIR
    if target.exists():
        raise AudienceError(f"{target} already exists; remove it to write the index again.")
    snapshot.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".index.tmp-", dir=snapshot))
    try:
        _write_synthetic_index(work, users, seed, as_of)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    manifest = {"as_of": as_of.isoformat(), "rows": {"users": users}, "definitions": DEFINITIONS}
    (snapshot / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return target


def _write_synthetic_index(work: Path, users: int, seed: int, as_of: dt.date) -> None:
    writer = pq.ParquetWriter(work / layout.USERS_FILE, pa.schema([("user_id", pa.string())]))
    with writer:
        for first in range(0, users, USERS_CHUNK):
            stop = min(users, first + USERS_CHUNK)
            writer.write_table(pa.table({"user_id": user_ids(first, stop, users)}))
    (work / layout.NUMBERS_DIR).mkdir()
    meta_tags: dict[str, Any] = {}
    with open(work / layout.BITMAPS_FILE, "wb") as out:

        def put(bitmap: BitMap) -> list[int]:
            data = bitmap.serialize()
            offset = out.tell()
            out.write(data)
            return [offset, len(data), len(bitmap)]

        for column in _columns(users, seed):
            name = column.name
            definition = DEFINITIONS[name]
            tag_type = str(definition["type"])
            entry: dict[str, Any] = {
                "type": tag_type,
                **{key: definition[key] for key in ("name_zh", "name_en")},
            }
            if tag_type in layout.NUMBER_TYPES:
                prepared = _prepare(pa.array(column.values, mask=column.nulls), tag_type, entry)
                if name == "spend_365d":
                    entry["scale"] = 2  # int64 cents, as build_index stores a decimal(18, 2)
                del column
                values, ids = prepared.sorted_values, prepared.sorted_ids
                assert values is not None and ids is not None
                np.save(work / layout.NUMBERS_DIR / f"{name}.values.npy", values)
                np.save(work / layout.NUMBERS_DIR / f"{name}.ids.npy", ids)
                entry["null"] = put(prepared.null)
                size = bucket_size(len(ids))
                entry["bucket_size"] = size
                entry["buckets"], entry["prefixes"] = [], []
                running = BitMap()
                for number, start in enumerate(range(0, len(ids), size), start=1):
                    bucket = bitmap_of(np.sort(ids[start : start + size]))
                    entry["buckets"].append(put(bucket))
                    running |= bucket
                    if number % layout.PREFIX_EVERY == 0 and start + size < len(ids):
                        entry["prefixes"].append(put(running))
                del prepared, values, ids, running
            else:
                entry["declared"] = [item["value"] for item in definition.get("values", [])]
                prepared = _prepare(column.to_arrow(dictionary=True), tag_type, entry)
                del column
                entry["values"] = {value: put(bitmap) for value, bitmap in prepared.bitmaps.items()}
                entry["null"] = put(prepared.null)
                del prepared
            meta_tags[name] = entry
    meta = {
        "format": layout.FORMAT_VERSION,
        "as_of": as_of.isoformat(),
        "users": users,
        "tags": meta_tags,
        "skipped": {},
    }
    text = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))
    (work / layout.INDEX_FILE).write_text(text + "\n", encoding="utf-8")
