"""History (huaxiang.history, huaxiang.bins): snapshots, migration matrix, drift, AIPL flows, cut points.

The snapshots are written by hand (``write_snapshot``) so every expected number
is computed here from the rows below.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from huaxiang.bins import suggest_bins
from huaxiang.catalog import TagDef
from huaxiang.engine.snapshot import snapshot_path, write_snapshot
from huaxiang.errors import NotFoundError, RequestError
from huaxiang.history import (
    PSI_FLOOR,
    decile_edges,
    diff,
    find_snapshot,
    list_snapshots,
    psi,
    psi_flag,
)

D1 = dt.date(2026, 10, 1)
D2 = dt.date(2026, 11, 1)

DEFINITIONS: dict[str, dict[str, Any]] = {
    "stage": {"type": "enum", "category": "operable", "name_zh": "阶段", "name_en": "Stage",
              "values": [{"value": "a"}, {"value": "b"}, {"value": "c"}]},
    "spend": {"type": "number", "category": "operable", "name_zh": "消费", "name_en": "Spend"},
    "buyer": {"type": "boolean", "category": "operable", "name_zh": "购买者", "name_en": "Buyer"},
    "aipl_stage": {"type": "enum", "category": "operable", "name_zh": "AIPL", "name_en": "AIPL"},
    "new_tag": {"type": "integer", "category": "custom", "name_zh": "新", "name_en": "New"},
}

BEFORE = {
    "user_id": [f"u{i:02d}" for i in range(1, 11)],
    "stage": ["a", "a", "a", "a", "b", "b", "b", None, "c", "a"],
    "spend": [Decimal(f"{v}.00") for v in range(1, 11)],
    "buyer": [True, True, False, False, True, True, True, False, True, None],
    "aipl_stage": ["awareness", "awareness", "awareness", "interest", "interest", "purchase", "purchase",
                   None, "loyalty", "awareness"],
    "old_tag": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
}
# u10 is gone by D2, u11 is new.
AFTER = {
    "user_id": [f"u{i:02d}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11)],
    "stage": ["a", "a", "b", "c", "b", "b", "c", "a", "c", "b"],
    "spend": [Decimal(f"{v}.00") for v in (1, 1, 1, 1, 1, 6, 7, 8, 9, 20)],
    "buyer": [True, True, True, False, True, True, True, True, True, False],
    "aipl_stage": ["interest", "purchase", "awareness", "purchase", "interest", "loyalty", "purchase",
                   "awareness", "loyalty", "awareness"],
    "new_tag": [None, None, None, None, None, None, None, None, None, None],
}
MONEY = pa.decimal128(18, 2)


def write(
    root: Path, as_of: dt.date, columns: dict[str, list[Any]], definitions: dict[str, Any], money: bool = True
) -> None:
    types = {"spend": MONEY if money else pa.float64(), "new_tag": pa.int64(), "old_tag": pa.int64(),
             "flat": pa.int64()}
    table = pa.table({name: pa.array(values, types.get(name)) for name, values in columns.items()})
    manifest = {"as_of": as_of.isoformat(), "catalog_hash": "x" * 64,
                "definitions": {k: v for k, v in definitions.items() if k in columns}}
    write_snapshot(snapshot_path(root, as_of), table, manifest)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    write(tmp_path, D1, BEFORE, DEFINITIONS)
    write(tmp_path, D2, AFTER, DEFINITIONS)
    return tmp_path


def test_list_snapshots_ignores_unpublished_and_foreign_entries(shop: Path) -> None:
    (shop / "snapshots" / "2026-12-01").mkdir()  # a date folder without files is not a snapshot
    (shop / "snapshots" / "notes").mkdir()
    (shop / "snapshots" / "2026-1-5").mkdir()  # not an ISO date as huaxiang writes it
    snapshots = list_snapshots(shop)
    assert [s.as_of for s in snapshots] == [D1, D2]
    assert snapshots[0].path == shop / "snapshots" / "2026-10-01"
    assert snapshots[1].users == 10
    assert snapshots[1].tags == ["stage", "spend", "buyer", "aipl_stage", "new_tag"]
    assert find_snapshot(shop).as_of == D2
    assert find_snapshot(shop, D1).as_of == D1
    assert list_snapshots(shop / "nowhere") == []


def test_snapshot_errors_say_what_there_is(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(NotFoundError) as unknown:
        find_snapshot(shop, dt.date(2026, 10, 2))
    assert str(unknown.value) == (
        f"no snapshot for 2026-10-02 in {shop / 'snapshots'}. Snapshots: 2026-10-01, 2026-11-01. "
        f"Build it with 'huaxiang build -w {shop} --as-of 2026-10-02'."
    )
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(NotFoundError) as none:
        diff(empty, D1, D2)
    assert str(none.value) == (
        f"no snapshots in {empty / 'snapshots'} yet; build one first with "
        f"'huaxiang build -w {empty} --as-of YYYY-MM-DD'."
    )
    assert none.value.http_status == 404


def test_migration_matrix_counts_new_gone_and_null(shop: Path) -> None:
    result = diff(shop, D1, D2, tag="stage")
    matrix = result.migration
    assert matrix is not None
    assert matrix.rows == ["a", "b", "c", "(none)", "(new)"]
    assert matrix.columns == ["a", "b", "c", "(gone)"]
    assert matrix.counts == [
        [2, 1, 1, 1],  # u01, u02 stay; u03 -> b; u04 -> c; u10 gone
        [0, 2, 1, 0],  # u05, u06 stay; u07 -> c
        [0, 0, 1, 0],  # u09
        [1, 0, 0, 0],  # u08 had no stage, now a
        [0, 1, 0, 0],  # u11 is new, at b
    ]
    assert matrix.row_share("a", "a") == 2 / 5
    assert matrix.row_share("b", "c") == 1 / 3
    assert (result.users_before, result.users_after, result.users_common) == (10, 10, 9)
    assert (result.users_new, result.users_gone) == (1, 1)
    long = matrix.to_arrow()
    assert long.column_names == ["from", "to", "users", "row_share"]
    assert long.num_rows == 9
    assert long.slice(0, 1).to_pylist() == [{"from": "a", "to": "a", "users": 2, "row_share": 0.4}]


def test_boolean_tags_have_a_matrix_too(shop: Path) -> None:
    matrix = diff(shop, D1, D2, tag="buyer").migration
    assert matrix is not None
    assert matrix.rows == ["true", "false", "(none)", "(new)"]
    assert matrix.columns == ["true", "false", "(gone)"]
    assert matrix.counts == [[6, 0, 0], [2, 1, 0], [0, 0, 1], [0, 1, 0]]


def test_categorical_drift_coverage_psi_and_share_changes(shop: Path) -> None:
    drift = {item.tag: item for item in diff(shop, D1, D2).drift}
    stage = drift["stage"]
    assert (stage.kind, stage.status) == ("categorical", "both")
    assert stage.coverage_before == 0.9 and stage.coverage_after == 1.0
    assert stage.coverage_change == pytest.approx(0.1)
    # Shares among non-null values: a 5/9 -> 3/10, b 3/9 -> 4/10, c 1/9 -> 3/10.
    expected = ((0.3 - 5 / 9) * math.log(0.3 / (5 / 9)) + (0.4 - 3 / 9) * math.log(0.4 / (3 / 9))
                + (0.3 - 1 / 9) * math.log(0.3 / (1 / 9)))
    assert stage.psi == pytest.approx(expected, abs=1e-12)
    assert round(expected, 4) == 0.3572
    assert stage.flag == "shift"
    assert [(c.value, round(c.before, 4), c.after) for c in stage.share_changes] == [
        ("a", 0.5556, 0.3), ("c", 0.1111, 0.3), ("b", 0.3333, 0.4)
    ]


def test_numeric_drift_uses_the_first_dates_deciles(shop: Path) -> None:
    spend = {item.tag: item for item in diff(shop, D1, D2).drift}["spend"]
    assert spend.kind == "numeric"
    # D1 is 1..10: deciles 1..9, so ten bins of 10 % each. D2 puts 5 users in (-inf, 1],
    # none in (1, 2] ... (4, 5] (floored at 0.0001) and one in each of the other five bins.
    expected = (0.5 - 0.1) * math.log(0.5 / 0.1) + 4 * (PSI_FLOOR - 0.1) * math.log(PSI_FLOOR / 0.1)
    assert spend.psi == pytest.approx(expected, abs=1e-12)
    assert spend.flag == "shift"
    # The mean is unchanged while the distribution moved: PSI sees what the mean does not.
    assert (spend.mean_before, spend.mean_after) == (5.5, 5.5)
    assert (spend.median_before, spend.median_after) == (5.5, 3.5)
    assert decile_edges(np.arange(1.0, 11.0)).tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_tags_in_one_snapshot_only_have_no_psi(shop: Path) -> None:
    drift = {item.tag: item for item in diff(shop, D1, D2).drift}
    assert list(drift) == ["stage", "spend", "buyer", "aipl_stage", "old_tag", "new_tag"]
    old = drift["old_tag"]
    assert (old.status, old.type, old.coverage_before, old.coverage_after, old.psi, old.flag) == (
        "removed", "integer", 1.0, None, None, "-")
    new = drift["new_tag"]
    assert (new.status, new.coverage_before, new.coverage_after, new.psi) == ("added", None, 0.0, None)


def test_a_tag_whose_type_changed_gets_coverage_only(tmp_path: Path) -> None:
    write(tmp_path, D1, {"user_id": ["u1", "u2"], "level": [1, None]},
          {"level": {"type": "integer", "category": "custom", "name_zh": "级", "name_en": "Level"}})
    write(tmp_path, D2, {"user_id": ["u1", "u2"], "level": ["high", "low"]},
          {"level": {"type": "enum", "category": "custom", "name_zh": "级", "name_en": "Level"}})
    (level,) = diff(tmp_path, D1, D2).drift
    assert (level.type, level.kind, level.coverage_before, level.coverage_after, level.psi) == (
        "integer→enum", "other", 0.5, 1.0, None)
    with pytest.raises(RequestError) as error:
        diff(tmp_path, D1, D2, tag="level")
    assert str(error.value) == (
        "tag 'level' changed type between the snapshots (integer on 2026-10-01, enum on 2026-11-01); "
        "a migration matrix needs the same values at both dates."
    )


def test_psi_thresholds() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert [psi_flag(v) for v in (None, 0.0, 0.1, 0.1001, 0.25, 0.2501)] == [
        "-", "stable", "stable", "watch", "watch", "shift"
    ]


def test_aipl_flow_rates(shop: Path) -> None:
    aipl = diff(shop, D1, D2).aipl
    assert aipl is not None
    assert aipl.counts_before == {"awareness": 4, "interest": 2, "purchase": 2, "loyalty": 1}
    assert aipl.counts_after == {"awareness": 3, "interest": 2, "purchase": 3, "loyalty": 2}
    flows = {flow.name: (flow.users, flow.moved, flow.rate) for flow in aipl.flows}
    # u10 (awareness) is gone by D2 and left out; u01 -> interest, u02 -> purchase, u03 stays.
    assert flows == {
        "A→I": (3, 1, 1 / 3),
        "I→P": (2, 1, 1 / 2),  # u04 -> purchase, u05 stays
        "P→L": (2, 1, 1 / 2),  # u06 -> loyalty, u07 stays
        "A→P": (3, 1, 1 / 3),  # purchase or loyalty at D2: u02
    }


def test_no_aipl_without_the_tag_at_both_dates(tmp_path: Path) -> None:
    write(tmp_path, D1, {k: v for k, v in BEFORE.items() if k != "aipl_stage"}, DEFINITIONS)
    write(tmp_path, D2, AFTER, DEFINITIONS)
    assert diff(tmp_path, D1, D2).aipl is None


def test_matrix_errors(shop: Path) -> None:
    with pytest.raises(NotFoundError) as unknown:
        diff(shop, D1, D2, tag="stag")
    assert str(unknown.value) == (
        "no tag 'stag' in the snapshots of 2026-10-01 and 2026-11-01. Did you mean 'stage'?"
    )
    with pytest.raises(RequestError) as numeric:
        diff(shop, D1, D2, tag="spend")
    assert str(numeric.value) == (
        "a migration matrix needs an enum or boolean tag; 'spend' is number. "
        "Tags that qualify: stage, buyer, aipl_stage. "
        "To follow a numeric tag, bin it first (a bins tag; see 'huaxiang bins suggest')."
    )
    with pytest.raises(NotFoundError) as one_side:
        diff(shop, D1, D2, tag="old_tag")
    assert str(one_side.value) == (
        f"tag 'old_tag' is in the snapshot of 2026-10-01 but not in that of 2026-11-01 (skipped or "
        f"not in the catalog then; see {shop / 'snapshots' / '2026-11-01' / 'manifest.json'}). "
        "A migration matrix needs it at both dates."
    )


def test_to_dict_is_plain_json(shop: Path) -> None:
    data = diff(shop, D1, D2, tag="stage").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["users"] == {"before": 10, "after": 10, "common": 9, "new": 1, "gone": 1}
    assert data["migration"]["row_share"][0] == [0.4, 0.2, 0.2, 0.2]
    flows = {f["name"]: f for f in data["aipl"]["flows"]}
    assert flows["A→P"]["to"] == ["purchase", "loyalty"]
    assert next(d for d in data["drift"] if d["tag"] == "new_tag")["coverage_change"] is None


# ---------------------------------------------------------------------------- bins suggest


def plateau(low: float, high: float, n: int) -> list[float]:
    """n values spread evenly inside (low, high], none on a bound."""
    step = (high - low) / n
    return [low + (i + 0.5) * step for i in range(n)]


@pytest.fixture
def spend_shop(tmp_path: Path) -> Path:
    # Seed 002's picture: head counts change level at 1,000, 3,000 and 10,000.
    values = plateau(0, 1000, 3000) + plateau(1000, 3000, 2000) + plateau(3000, 10_000, 1400)
    values += plateau(10_000, 50_000, 100)
    n = len(values)
    cross = [1 + (i % 2) if v <= 1000 else 3 + (i % 2) for i, v in enumerate(values)]
    columns = {
        "user_id": [f"u{i:05d}" for i in range(n + 2)],
        "spend": [*values, None, 500.0],
        "premium": [v > 3000 for v in values] + [True, None],
        "cross": [*cross, 1, None],
        "segment": ["x"] * (n + 2),
        "flat": [2] * (n + 2),
    }
    definitions = {
        "spend": {"type": "number", "category": "operable", "name_zh": "消费", "name_en": "Spend"},
        "premium": {"type": "boolean", "category": "style", "name_zh": "高端", "name_en": "Premium"},
        "cross": {"type": "integer", "category": "operable", "name_zh": "跨品类数", "name_en": "Categories"},
        "segment": {"type": "enum", "category": "custom", "name_zh": "分群", "name_en": "Segment"},
        "flat": {"type": "integer", "category": "custom", "name_zh": "常数", "name_en": "Flat"},
    }
    write(tmp_path, D2, columns, definitions, money=False)
    return tmp_path


def test_suggest_bins_finds_the_levels_and_counts_them(spend_shop: Path) -> None:
    result = suggest_bins(spend_shop, "spend", k=4, scale="linear")
    assert result.edges == [1000.0, 3000.0, 10000.0]
    assert [(b.label, b.users) for b in result.bins] == [
        ("<=1000", 3001), ("1000-3000", 2000), ("3000-10000", 1400), (">10000", 100)
    ]  # 3001: the extra user at 500
    assert (result.users, result.nulls, result.as_of) == (6501, 1, D2)
    assert result.bins[0].share == pytest.approx(3001 / 6501)
    assert (result.bins[1].low, result.bins[1].high) == (1000.0, 3000.0)
    assert result.checks == [] and result.trait is None


def test_a_boolean_trait_gets_rates_and_z(spend_shop: Path) -> None:
    result = suggest_bins(spend_shop, "spend", k=4, scale="linear", trait="premium")
    assert (result.trait_measure, result.statistic) == ("rate", "z")
    # The user at 500 has no premium value: left out of the trait figures, not of the counts.
    assert [b.trait for b in result.bins] == [0.0, 0.0, 1.0, 1.0]
    check = result.checks[1]
    assert (check.edge, check.users_below, check.users_above) == (3000.0, 5000, 1500)
    pooled = 1500 / 6500
    z = 1.0 / math.sqrt(pooled * (1 - pooled) * (1 / 5000 + 1 / 1500))
    assert check.statistic == pytest.approx(z)
    assert check.separates
    assert [c.separates for c in result.checks] == [True, True, True]


def test_a_numeric_trait_gets_means_and_welch_t(spend_shop: Path) -> None:
    result = suggest_bins(spend_shop, "spend", k=4, scale="linear", trait="cross")
    assert (result.trait_measure, result.statistic) == ("mean", "t")
    assert [b.trait for b in result.bins] == [1.5, 3.5, 3.5, 3.5]
    first = result.checks[0]
    below = [1 + (i % 2) for i in range(3000)]
    above = [3 + (i % 2) for i in range(3000, 6500)]
    spread = statistics.variance(below) / 3000 + statistics.variance(above) / 3500
    assert first.statistic == pytest.approx((3.5 - 1.5) / math.sqrt(spread))
    assert (first.trait_below, first.trait_above) == (1.5, 3.5)
    assert [c.separates for c in result.checks] == [True, True, True]
    # A trait that is the same on both sides of every cut is not separated.
    flat = suggest_bins(spend_shop, "spend", k=4, scale="linear", trait="flat")
    assert [c.statistic for c in flat.checks] == [None, None, None]
    assert [c.separates for c in flat.checks] == [False, False, False]


def test_positive_makes_zero_a_bin_and_the_snippet_is_a_valid_tag(spend_shop: Path) -> None:
    result = suggest_bins(spend_shop, "spend", k=4, scale="linear", positive=True)
    assert result.edges == [0.0, 1000.0, 3000.0, 10000.0]
    assert result.bins[0].label == "<=0" and result.bins[0].users == 0
    item = yaml.safe_load(result.snippet)[0]
    assert item["bins"] == {"of": "spend", "edges": [0, 1000, 3000, 10000]}
    tag = TagDef.model_validate(item)
    assert (tag.id, tag.name_zh, tag.name_en, tag.category.value) == (
        "spend_band", "消费分档", "Spend, band", "operable")
    assert tag.bins is not None and tag.bins.bin_labels() == [b.label for b in result.bins]
    assert json.loads(json.dumps(result.to_dict()))["edges"] == [0.0, 1000.0, 3000.0, 10000.0]


def test_bins_errors(spend_shop: Path) -> None:
    with pytest.raises(RequestError) as enum:
        suggest_bins(spend_shop, "segment")
    assert str(enum.value) == (
        "bins need a numeric tag; 'segment' is enum. Numeric tags in snapshot 2026-11-01: spend, cross, flat."
    )
    with pytest.raises(NotFoundError) as unknown:
        suggest_bins(spend_shop, "spnd")
    assert str(unknown.value).startswith("no tag 'spnd' in snapshot 2026-11-01. Did you mean 'spend'? "
                                         "It has 5 tags")
    with pytest.raises(RequestError) as trait:
        suggest_bins(spend_shop, "spend", trait="segment")
    assert str(trait.value).startswith("a trait is a boolean or numeric tag; 'segment' is enum.")
    with pytest.raises(NotFoundError, match="no snapshot for 2026-10-01"):
        suggest_bins(spend_shop, "spend", as_of=D1)
