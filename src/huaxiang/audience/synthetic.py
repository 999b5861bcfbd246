"""A synthetic snapshot with every kind of tag at realistic densities, for tests and benchmarks.

:func:`synthetic_snapshot` writes ``DIR/snapshots/DATE/tags.parquet`` and a
``manifest.json`` with the tags' definitions, the way the tag engine publishes
a snapshot, so the audience engine can be exercised at any size (10M users take
a few seconds) without ingesting and building a shop. Tags:

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
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

AS_OF = dt.date(2026, 10, 31)

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


def synthetic_tags(users: int, seed: int = 7) -> pa.Table:
    """The synthetic tags table (one row per user, ordered by ``user_id``)."""
    rng = np.random.default_rng(seed)

    def nulls(share: float) -> np.ndarray:
        return rng.random(users) < share

    def masked(values: np.ndarray, share: float, kind: pa.DataType | None = None) -> pa.Array:
        return pa.array(values, type=kind, mask=nulls(share)) if share else pa.array(values, type=kind)

    width = max(8, len(str(users)))
    user_ids = pa.array([f"U{i:0{width}d}" for i in range(1, users + 1)], pa.string())
    segments = np.array(["vip", "regular", "new", "lapsed"], dtype=object)
    groups = np.array(
        ["千禧一代/精英青年", "千禧一代/有为青年", "家庭/中产家庭", "家庭/无孩小资", "其他人群"], dtype=object
    )
    spend_cents = np.round(rng.lognormal(mean=7.0, sigma=1.2, size=users) * 100).astype(np.int64)
    # decimal128 from unscaled int64 cents: 16-byte little-endian words (low, sign-extended high).
    words = np.stack([spend_cents, spend_cents >> 63], axis=1)
    spend = pa.Array.from_buffers(pa.decimal128(18, 2), users, [None, pa.py_buffer(words.tobytes())])
    spend = pc.if_else(pa.array(nulls(0.15)), pa.scalar(None, pa.decimal128(18, 2)), spend)
    columns: dict[str, pa.Array] = {
        "user_id": user_ids,
        "is_member": masked(rng.random(users) < 0.30, 0.05),
        "viewed_dyson_30d": masked(rng.random(users) < 0.02, 0.0),
        "segment": masked(segments[rng.choice(4, size=users, p=[0.05, 0.55, 0.25, 0.15])], 0.10, pa.string()),
        "finance_group": masked(
            groups[rng.choice(5, size=users, p=[0.1, 0.25, 0.2, 0.15, 0.3])], 0.03, pa.string()
        ),
        "city_tier": masked(
            rng.choice(np.arange(1, 7), size=users, p=[0.08, 0.12, 0.25, 0.25, 0.18, 0.12]), 0.08
        ),
        "age": masked(rng.integers(16, 71, size=users), 0.0),
        "outing_score": masked(np.round(rng.beta(1.2, 4.0, size=users), 2), 0.20),
        "spend_365d": spend,
        "margin": masked(np.round(rng.normal(20.0, 40.0, size=users), 3), 0.05),
    }
    return pa.table(columns)


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
