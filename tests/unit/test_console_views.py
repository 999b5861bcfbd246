"""The library calls behind the console's overview, catalog, segments and experiments pages,
checked against pandas over the analysis tests' sample shop."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from analysis_shop import AS_OF, BEFORE, CAMPAIGN, sample_shop

from huaxiang.analysis.experiment_views import experiment_summaries, segment_tags
from huaxiang.analysis.experiments import experiment_from_touches
from huaxiang.analysis.metrics import experiment_results
from huaxiang.analysis.segment_flows import migration, value_groups
from huaxiang.analysis.segment_stats import shop_segments
from huaxiang.analysis.tag_catalog import find_tag, tag_detail, tag_list, workspace_catalog
from huaxiang.errors import NotFoundError, RequestError
from huaxiang.history import diff

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_shop(tmp_path_factory)


def tags_frame(shop: Path, day: dt.date = AS_OF) -> pd.DataFrame:
    return pd.read_parquet(shop / "snapshots" / str(day) / "tags.parquet")


def skipped_tags(shop: Path) -> list[dict[str, str]]:
    """The tags the build skipped (the CLV tags without pymc-marketing, ...): maybe none."""
    manifest = json.loads((shop / "snapshots" / str(AS_OF) / "manifest.json").read_text(encoding="utf-8"))
    found: list[dict[str, str]] = manifest.get("skipped", [])
    return found


def test_shop_segments_match_pandas(shop: Path) -> None:
    frame = tags_frame(shop)
    found = shop_segments(shop, AS_OF)
    assert found.previous == BEFORE and found.users == len(frame)
    assert found.lifecycle is not None and found.rfm is not None
    spend = frame.monetary_365d.astype(float).fillna(0)
    for sizes, column in ((found.lifecycle, "lifecycle_stage"), (found.rfm, "rfm_class")):
        assert sizes.order[: len(sizes.definition["values"])] == [
            v["value"] for v in sizes.definition["values"] if v["value"] in set(frame[column].dropna())
        ]
        for row in sizes.rows:
            members = frame[column] == row["segment"]
            assert row["users"] == int(members.sum())
            assert row["arpu"] == pytest.approx(spend[members].mean(), abs=0.0051)  # rounded to the cent
    assert found.rfm_cells is not None
    scored = frame.dropna(subset=["rfm_r_score", "rfm_f_score"])
    assert sum(map(sum, found.rfm_cells.users)) == len(scored)
    assert found.rfm_cells.users[4][0] == int(((scored.rfm_f_score == 5) & (scored.rfm_r_score == 1)).sum())
    assert found.value_grid is not None
    assert found.value_grid.never == int((frame.value_layer == 0).sum())
    assert found.aipl_counts == {
        stage: int((frame.aipl_stage == stage).sum())
        for stage in ("awareness", "interest", "purchase", "loyalty")
    }
    assert found.aipl_flows == diff(shop, BEFORE, AS_OF).aipl
    first = shop_segments(shop, BEFORE)
    assert first.previous is None and first.aipl_flows is None


def test_tag_list_search_filter_and_limits(shop: Path) -> None:
    everything = tag_list(shop, AS_OF)
    assert everything.total == len(everything.tags) == sum(everything.counts.values())
    assert {"lifecycle_stage", "scene_digital_geek"} <= {t.id for t in everything.tags}
    for item in skipped_tags(shop):  # a tag the build skipped is listed, with its reason
        assert next(t for t in everything.tags if t.id == item["tag"]).skipped == item["reason"]
    searched = tag_list(shop, AS_OF, query="RFM score")
    assert searched.tags and all(
        "rfm" in f"{t.id} {t.name_en}".lower() and "score" in f"{t.id} {t.name_en}".lower()
        for t in searched.tags
    )
    assert [t.id for t in tag_list(shop, AS_OF, query="生命周期").tags] == ["lifecycle_stage"]
    operable = tag_list(shop, AS_OF, category="operable")
    assert len(operable.tags) == everything.counts["operable"]
    assert {t.category for t in operable.tags} == {"operable"}
    limited = tag_list(shop, AS_OF, allowed={"basic"})
    assert {t.category for t in limited.tags} == {"basic"} and limited.total == everything.counts["basic"]
    with pytest.raises(RequestError, match="unknown category 'operabel'. Did you mean 'operable'"):
        tag_list(shop, AS_OF, category="operabel")
    with pytest.raises(NotFoundError, match="no tag 'lifecycle_stag' .*lifecycle_stage"):
        find_tag(shop, "lifecycle_stag")


def test_tag_detail_matches_the_snapshot_and_the_catalog(shop: Path) -> None:
    frame = tags_frame(shop)
    enum = tag_detail(shop, "lifecycle_stage", AS_OF)
    assert enum.distribution is not None and enum.distribution.kind == "categorical"
    counts = frame.lifecycle_stage.value_counts()
    assert dict(zip(enum.distribution.values, enum.distribution.counts, strict=True)) == counts.to_dict()
    assert enum.distribution.values[0] == "potential"  # declared order
    number = tag_detail(shop, "frequency_365d", AS_OF)
    shown = number.distribution
    assert shown is not None and shown.kind == "numeric"
    assert sum(shown.counts) == shown.non_null == int(frame.frequency_365d.notna().sum())
    assert len(shown.edges) == len(shown.counts) + 1
    assert (shown.min, shown.max) == (frame.frequency_365d.min(), frame.frequency_365d.max())
    assert shown.median == pytest.approx(frame.frequency_365d.median())
    drifted = next(d for d in diff(shop, BEFORE, AS_OF).drift if d.tag == "frequency_365d")
    assert number.drift == drifted and number.previous == BEFORE
    catalog = workspace_catalog(shop)
    assert workspace_catalog(shop) is catalog  # loaded once while tags/ is unchanged
    assert number.dependents == catalog.dependents("frequency_365d")
    assert number.dependents_all == catalog.dependents("frequency_365d", transitive=True)
    assert "style_promo_driven" in number.dependents and number.maker == "model"
    rule = tag_detail(shop, "style_promo_driven", AS_OF)
    assert rule.maker == "rule" and rule.rules[0][0] == "expr" and "frequency_365d >= 2" in rule.rules[0][1]
    assert "frequency_365d" in rule.reads and rule.definition_yaml and "rule:" in rule.definition_yaml
    assert rule.location is not None and rule.location.startswith("tags/promo_style.yaml:")
    for item in skipped_tags(shop):
        skipped = tag_detail(shop, item["tag"], AS_OF)
        assert skipped.distribution is None and skipped.entry.skipped == item["reason"]
    generated = tag_detail(shop, "scene_digital_geek", AS_OF)  # made by a template
    assert generated.entry.template and generated.maker == "scene" and generated.inputs
    assert tag_detail(shop, "lifecycle_stage", BEFORE).drift is None  # no earlier snapshot


def test_migration_matches_pandas(shop: Path) -> None:
    before = tags_frame(shop, BEFORE)[["user_id", "rfm_class"]]
    after = tags_frame(shop, AS_OF)[["user_id", "rfm_class"]]
    both = before.merge(after, on="user_id", suffixes=("_before", "_after"))
    same = both.rfm_class_before.fillna("(none)") == both.rfm_class_after.fillna("(none)")
    view = migration(shop, BEFORE, AS_OF, "rfm_class")
    assert view.stayed == int(same.sum()) and view.moved == int((~same).sum())
    assert (view.users_before, view.users_after) == (len(before), len(after))
    assert view.migration == diff(shop, BEFORE, AS_OF, tag="rfm_class").migration  # as diff computes it
    labels = migration(shop, BEFORE, AS_OF, "value_layer_name").labels("en")
    assert labels["L0 未购 never bought"] == "L0 never bought"
    assert migration(shop, BEFORE, AS_OF, "lifecycle_stage").labels("zh")["active"] == "老客"
    with pytest.raises(RequestError, match=r"first snapshot \(2026-10-31\) must be before"):
        migration(shop, AS_OF, BEFORE, "rfm_class")
    with pytest.raises(RequestError, match="lifecycle_stage, rfm_class, value_layer_name"):
        migration(shop, BEFORE, AS_OF, "gender")


def test_value_groups_are_cached(shop: Path) -> None:
    first = value_groups(shop, AS_OF)
    if first is None:  # the sample catalog may skip the value groups: then there is nothing to show
        assert "value_group_15" not in tags_frame(shop).columns
        return
    assert value_groups(shop, AS_OF) is first
    assert sum(group.users for group in first.groups) + first.ungrouped_users == len(tags_frame(shop))


def test_experiment_summaries_and_segment_tags(shop: Path) -> None:
    assert experiment_summaries(shop) == []
    experiment_from_touches(shop, CAMPAIGN, name="double11")
    (assigned,) = experiment_summaries(shop)
    assert assigned.status == "assigned" and assigned.audience == f"campaign {CAMPAIGN}"
    assert assigned.sizes is not None and set(assigned.sizes) == {name for name, _ in assigned.variants}
    experiment_results(shop, "double11")
    (saved,) = experiment_summaries(shop)
    assert saved.status == "results" and saved.touch_date == "2026-10-18"
    day, choices = segment_tags(shop, dt.date(2026, 10, 18))
    assert day == BEFORE
    ids = {choice.id for choice in choices}
    assert {"lifecycle_stage", "rfm_class"} <= ids and "frequency_365d" not in ids
