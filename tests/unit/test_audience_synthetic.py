"""The synthetic index written directly (for 10⁸ users) is the index built from the synthetic snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from huaxiang.audience import SnapshotIndex, build_index, check, evaluate, parse
from huaxiang.audience.errors import AudienceError
from huaxiang.audience.synthetic import synthetic_index, synthetic_snapshot


def test_synthetic_index_equals_the_built_index(tmp_path: Path) -> None:
    users = 12_345
    snapshot = synthetic_snapshot(tmp_path / "built", users, seed=3)
    built = SnapshotIndex(build_index(snapshot).path)
    direct = SnapshotIndex(synthetic_index(tmp_path / "direct", users, seed=3))
    assert direct.users == built.users == users
    assert direct.specs == built.specs
    assert direct.user_ids.equals(built.user_ids)
    for tag, entry in built.meta["tags"].items():
        other = direct.meta["tags"][tag]
        assert direct.null(tag) == built.null(tag), tag
        if entry["storage"] == "sorted":
            for mine, theirs in zip(direct.numbers(tag), built.numbers(tag), strict=True):
                assert np.array_equal(mine, theirs), tag
            same = ("type", "dtype", "scale", "bucket_size")
            assert {k: other.get(k) for k in same} == {k: entry.get(k) for k in same}, tag
            assert [b[2] for b in other["buckets"]] == [b[2] for b in entry["buckets"]], tag
            assert [p[2] for p in other["prefixes"]] == [p[2] for p in entry["prefixes"]], tag
        else:
            assert set(other["values"]) == set(entry["values"]), tag
            for value in entry["values"]:
                assert direct.value(tag, value) == built.value(tag, value), (tag, value)
    text = (
        "is_member AND city_tier IN (3, 4, 5, 6) AND (segment = 'vip' OR outing_score >= 0.5) "
        "AND NOT finance_group = '家庭' AND spend_365d >= 500 OR margin BETWEEN -3.5 AND 0"
    )
    tree = check(parse(text), built.specs)
    assert evaluate(tree, direct) == evaluate(tree, built)
    assert len(evaluate(tree, built)) > 0
    with pytest.raises(AudienceError, match="already exists"):
        synthetic_index(tmp_path / "direct", users, seed=3)
    built.close()
    direct.close()
