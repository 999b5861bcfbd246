"""Venn, exclusion, top N, stable splits and samples, checked against plain Python over the tags."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from huaxiang.audience import AudienceEngine, AudienceError, EmptyAudienceError
from huaxiang.audience import ops as ops_module
from huaxiang.audience.synthetic import synthetic_snapshot

USERS = 20_000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> AudienceEngine:
    root = tmp_path_factory.mktemp("ops")
    synthetic_snapshot(root, USERS, seed=3)
    found = AudienceEngine(root)
    yield found
    found.close()


@pytest.fixture(scope="module")
def rows(engine: AudienceEngine) -> list[dict[str, object]]:
    return pq.read_table(engine.snapshot.tags_path).to_pylist()


def ids(rows: list[dict[str, object]], keep) -> set[str]:  # noqa: ANN001
    return {str(row["user_id"]) for row in rows if keep(row)}


def test_venn_of_three_counts_every_region(engine: AudienceEngine, rows: list[dict[str, object]]) -> None:
    a = ids(rows, lambda r: r["is_member"] is True)
    b = ids(rows, lambda r: r["city_tier"] is not None and r["city_tier"] >= 3)
    c = ids(rows, lambda r: r["segment"] in ("vip", "regular"))
    venn = engine.venn(["is_member", "city_tier >= 3", "segment IN ('vip', 'regular')"], ["A", "B", "C"])
    assert venn.sizes == (len(a), len(b), len(c))
    assert venn.regions == {
        (True, True, True): len(a & b & c),
        (True, True, False): len(a & b - c),
        (True, False, True): len(a & c - b),
        (True, False, False): len(a - b - c),
        (False, True, True): len(b & c - a),
        (False, True, False): len(b - a - c),
        (False, False, True): len(c - a - b),
    }
    assert venn.union == len(a | b | c)
    assert sum(venn.regions.values()) == venn.union
    assert venn.region_label((True, False, True)) == "A ∩ C − B"
    two = engine.venn(["is_member", "viewed_dyson_30d"])
    assert two.names == ("A", "B") and len(two.regions) == 3
    with pytest.raises(AudienceError, match="takes 2 or 3 audiences, got 4"):
        engine.venn(["is_member"] * 4)


def test_exclusion(engine: AudienceEngine, rows: list[dict[str, object]]) -> None:
    kept = engine.exclude("city_tier >= 3", "is_member", "segment = 'lapsed'")
    expected = ids(rows, lambda r: r["city_tier"] is not None and r["city_tier"] >= 3) - ids(
        rows, lambda r: r["is_member"] is True or r["segment"] == "lapsed"
    )
    assert engine.user_ids(kept) == sorted(expected)


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("tag", ["outing_score", "spend_365d", "age"])
def test_top_n_is_exact_with_ties_by_user_id(
    engine: AudienceEngine, rows: list[dict[str, object]], tag: str, descending: bool
) -> None:
    members = [r for r in rows if r["segment"] != "vip" and r["segment"] is not None and r[tag] is not None]
    sign = -1 if descending else 1
    expected = sorted(members, key=lambda r: (sign * float(r[tag]), r["user_id"]))[:500]  # type: ignore[arg-type]
    top = engine.top("segment != 'vip'", tag, 500, descending=descending)
    assert top.column("user_id").to_pylist() == [r["user_id"] for r in expected]
    assert top.column(tag).to_pylist() == pytest.approx([float(r[tag]) for r in expected])  # type: ignore[arg-type]
    assert top.column("rank").to_pylist() == list(range(1, 501))
    if tag != "spend_365d":  # cents rarely tie; the scores and ages tie a lot
        values = [float(r[tag]) for r in expected]  # type: ignore[arg-type]
        assert len(set(values)) < len(values), "the case must hold ties to test their order"


@pytest.mark.parametrize("tag", ["age", "outing_score"])
@pytest.mark.parametrize("descending", [True, False])
def test_top_n_grows_its_window_over_ties(
    engine: AudienceEngine,
    rows: list[dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
    descending: bool,
    tag: str,
) -> None:
    # A tiny first window: the scan must grow it until n members and all ties at the cut are in
    # (about 370 users share each age, so the top ages tie far beyond the first window).
    monkeypatch.setattr(ops_module, "TOP_WINDOW", 3)
    members = [r for r in rows if r["is_member"] is True and r[tag] is not None]
    sign = -1 if descending else 1
    for n in (1, 7, 50, 333):
        expected = sorted(members, key=lambda r: (sign * float(r[tag]), r["user_id"]))[:n]  # type: ignore[arg-type]
        top = engine.top("is_member", tag, n, descending=descending)
        assert top.column("user_id").to_pylist() == [r["user_id"] for r in expected], n


def test_top_n_errors(engine: AudienceEngine, rows: list[dict[str, object]]) -> None:
    few = ids(rows, lambda r: r["viewed_dyson_30d"] is True and r["segment"] == "vip")
    assert 0 < len(few) < 100
    assert engine.top("viewed_dyson_30d AND segment = 'vip'", "age", 10**6).num_rows == len(few)
    with pytest.raises(EmptyAudienceError, match=r"^the audience is empty \(0 of 20,000 users match\)"):
        engine.top("segment = 'dormant'", "age", 10)
    with pytest.raises(AudienceError, match="top N ranks by a number or probability tag; 'segment' is enum"):
        engine.top("is_member", "segment", 10)
    with pytest.raises(AudienceError, match="unknown tag 'outing' to rank by. Did you mean 'outing_score'?"):
        engine.top("is_member", "outing", 10)


def _expected_group(user_id: str, salt: str, bounds: list[float], names: list[str]) -> str:
    digest = hashlib.sha256(f"{salt}\x1f{user_id}".encode()).digest()
    unit = (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53
    return next(name for name, bound in zip(names, bounds, strict=True) if unit < bound)


def test_split_is_the_salted_hash_and_ratios_hold(engine: AudienceEngine) -> None:
    result = engine.split("age >= 16", [0.9, 0.1], "exp-2026-11")
    assignment = dict(
        zip(*[result.assignment.column(c).to_pylist() for c in ("user_id", "group")], strict=True)
    )
    assert len(assignment) == USERS
    for user_id in list(assignment)[:500]:
        assert assignment[user_id] == _expected_group(
            user_id, "exp-2026-11", [0.9, 1.0], ["treatment", "control"]
        )
    share = result.sizes()["control"] / USERS
    assert abs(share - 0.1) < 4 * math.sqrt(0.1 * 0.9 / USERS)  # four standard errors
    again = engine.split("age >= 16", [9, 1], "exp-2026-11")
    assert again.assignment.equals(result.assignment)
    other = engine.split("age >= 16", [0.9, 0.1], "another-salt")
    assert not other.assignment.equals(result.assignment)


def test_split_is_stable_across_snapshots(tmp_path: Path, engine: AudienceEngine) -> None:
    # A later snapshot with more users: everyone already there keeps their group.
    synthetic_snapshot(tmp_path, USERS + 5_000, seed=4)
    later = AudienceEngine(tmp_path)
    try:
        first = engine.split("age >= 16", [1, 1, 1], "salt-1")
        second = later.split("age >= 16", [1, 1, 1], "salt-1")
    finally:
        later.close()
    before = dict(
        zip(first.assignment.column(0).to_pylist(), first.assignment.column(1).to_pylist(), strict=True)
    )
    after = dict(
        zip(second.assignment.column(0).to_pylist(), second.assignment.column(1).to_pylist(), strict=True)
    )
    assert {u: after[u] for u in before} == before
    assert set(first.names) == {"group_1", "group_2", "group_3"}
    for size in first.sizes().values():
        assert abs(size / USERS - 1 / 3) < 4 * math.sqrt(2 / 9 / USERS)


def test_stratified_split_holds_the_ratio_in_every_stratum(
    engine: AudienceEngine, rows: list[dict[str, object]]
) -> None:
    result = engine.split("is_member IS NOT NULL", [0.5, 0.5], "s", names=["a", "b"], stratify="segment")
    groups = dict(
        zip(result.assignment.column(0).to_pylist(), result.assignment.column(1).to_pylist(), strict=True)
    )
    per_stratum: Counter[tuple[object, str]] = Counter()
    for row in rows:
        if row["user_id"] in groups:
            per_stratum[(row["segment"], groups[row["user_id"]])] += 1  # type: ignore[index]
    for segment in ("vip", "regular", "new", "lapsed", None):
        assert abs(per_stratum[(segment, "a")] - per_stratum[(segment, "b")]) <= 1, segment
    again = engine.split("is_member IS NOT NULL", [0.5, 0.5], "s", names=["a", "b"], stratify="segment")
    assert again.assignment.equals(result.assignment)
    by_tier = engine.split("is_member IS NOT NULL", [0.5, 0.5], "s", names=["a", "b"], stratify="city_tier")
    tiers = dict(
        zip(by_tier.assignment.column(0).to_pylist(), by_tier.assignment.column(1).to_pylist(), strict=True)
    )
    per_tier: Counter[tuple[object, str]] = Counter()
    for row in rows:
        if row["user_id"] in tiers:
            per_tier[(row["city_tier"], tiers[row["user_id"]])] += 1  # type: ignore[index]
    for tier in (1, 2, 3, 4, 5, 6, None):
        assert abs(per_tier[(tier, "a")] - per_tier[(tier, "b")]) <= 1, tier
    with pytest.raises(AudienceError, match="stratify by a boolean, enum or integer tag; 'margin' is number"):
        engine.split("is_member", [1, 1], "s", stratify="margin")


def test_split_errors(engine: AudienceEngine) -> None:
    with pytest.raises(AudienceError, match="a split needs a salt"):
        engine.split("is_member", [1, 1], "")
    with pytest.raises(AudienceError, match="at least two groups"):
        engine.split("is_member", [1], "s")
    with pytest.raises(AudienceError, match="split ratios must be positive numbers, got 0.5, -0.5"):
        engine.split("is_member", [0.5, -0.5], "s")
    with pytest.raises(AudienceError, match="2 group names for 3 ratios"):
        engine.split("is_member", [1, 1, 1], "s", names=["a", "b"])
    with pytest.raises(EmptyAudienceError, match="^the audience is empty"):
        engine.split("segment = 'dormant'", [1, 1], "s")


def test_sample_shows_members_with_key_tags(engine: AudienceEngine, rows: list[dict[str, object]]) -> None:
    text = "viewed_dyson_30d AND city_tier IN (3, 4, 5, 6)"
    table = engine.sample(text, 5, seed=1)
    assert table.column_names == ["user_id", "viewed_dyson_30d", "city_tier"]
    assert table.num_rows == 5
    members = ids(rows, lambda r: r["viewed_dyson_30d"] is True and r["city_tier"] in (3, 4, 5, 6))
    assert set(table.column("user_id").to_pylist()) <= members
    assert table.column("user_id").to_pylist() == sorted(table.column("user_id").to_pylist())
    assert engine.sample(text, 5, seed=1).equals(table)
    assert not engine.sample(text, 5, seed=2).equals(table)
    assert engine.sample(text, 10**6).num_rows == len(members)
    shown = engine.sample(text, 3, tags=["segment", "spend_365d"])
    assert shown.column_names == ["user_id", "segment", "spend_365d"]
    with pytest.raises(EmptyAudienceError):
        engine.sample("segment = 'dormant'", 3)
