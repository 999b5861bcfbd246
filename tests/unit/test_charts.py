"""The shared chart definitions (huaxiang.analysis.charts): one figure, three languages."""

from __future__ import annotations

import datetime as dt

import pytest

from huaxiang.analysis import charts
from huaxiang.history import Flow, Migration

LIFECYCLE = {
    "values": [
        {"value": "new", "name_zh": "新客", "name_en": "new"},
        {"value": "active", "name_zh": "老客", "name_en": "active"},
        {"value": "L3"},
        {"value": "重要价值客户", "name_en": "Important value"},
    ]
}


def test_labels_in_each_language() -> None:
    assert charts.value_labels(LIFECYCLE, "zh") == {
        "new": "新客",
        "active": "老客",
        "L3": "L3",
        "重要价值客户": "重要价值客户",
    }
    assert charts.value_labels(LIFECYCLE, "en")["active"] == "active"
    assert charts.value_labels(LIFECYCLE, "en")["重要价值客户"] == "Important value"
    both = charts.value_labels(LIFECYCLE, "both")
    assert both == {
        "new": "新客 new",
        "active": "老客 active",
        "L3": "L3",
        "重要价值客户": "重要价值客户 Important value",
    }
    assert charts.pick_label("转化率 conversion", "zh") == "转化率"
    assert charts.pick_label("收藏/加购 favorite / cart", "en") == "favorite / cart"
    assert charts.pick_label("转化率 conversion", "both") == "转化率 conversion"
    assert charts.text("both", "RFM 热力图", "RFM heatmap", sep=" · ") == "RFM 热力图 · RFM heatmap"
    assert [charts.aipl_label("awareness", lang) for lang in ("zh", "en", "both")] == [
        "认知 A",
        "A awareness",
        "认知 A awareness",
    ]
    with pytest.raises(ValueError, match="one of zh, en, both"):
        charts.check_lang("fr")


def test_sizes_and_heatmaps_draw_the_data() -> None:
    rows = [{"segment": "active", "users": 30, "arpu": 12.345}, {"segment": "new", "users": 10, "arpu": 1.0}]
    figure = charts.segment_sizes(
        rows, charts.value_labels(LIFECYCLE, "en"), "sizes", "en", ["new", "active"]
    )
    assert list(figure.data[0].x) == ["new", "active"] and list(figure.data[0].y) == [10, 30]
    assert list(figure.data[1].y) == [1.0, 12.35]
    assert figure.layout.yaxis.title.text == "users"
    cells = charts.RfmCells(users=[[1] * 5 for _ in range(5)], arpu=[[2.0] * 5 for _ in range(5)])
    heatmap = charts.rfm_heatmap(cells, "zh")
    assert (
        heatmap.layout.xaxis.title.text == "R 得分"
        and heatmap.layout.title.text == "RFM 热力图: R得分 × F得分"
    )
    grid = charts.value_grid_from_layers(
        [
            {"name": "L0 未购 never bought", "users": 5},
            {"name": "L1 消费(0,1000]·150天以上 spend (0,1000], >150d", "users": 3},
            {"name": "L2 消费(0,1000]·近30天 spend (0,1000], ≤30d", "users": 4},
            {"name": "L6 消费(1000,3000]·150天以上 spend (1000,3000], >150d", "users": 2},
        ]
    )
    assert grid.never == 5 and grid.total == 9
    assert grid.spends == ["消费(0,1000]", "消费(1000,3000]"] and grid.users == [[3, 4], [2, 0]]
    assert "L0 never bought: 5" in charts.value_grid_heatmap(grid, "en").layout.title.text


def test_flows_sankey_and_lift() -> None:
    flows = [Flow("A→I", "awareness", ("interest",), users=10, moved=4)]
    bars = charts.aipl_flow_rates(flows, dt.date(2026, 9, 30), dt.date(2026, 10, 31), "en")
    assert list(bars.data[0].y) == [40.0] and bars.data[0].text[0] == "40.0% (4/10)"
    migration = Migration("lifecycle_stage", ["new", "(new)"], ["active", "(gone)"], [[3, 1], [2, 0]])
    sankey = charts.migration_sankey(migration, {"new": "新客", "active": "老客"}, "A", "B", "zh", "t")
    assert list(sankey.data[0].node.label) == ["新客 (A)", "(新增) (A)", "老客 (B)", "(离开) (B)"]
    assert list(sankey.data[0].link.value) == [3, 1, 2]
    comparison = {"lift": 0.2, "lift_ci_low": 0.1, "lift_ci_high": 0.4, "p_value": 0.01}
    result = {
        "name": "x",
        "control": "control",
        "treatments": ["t"],
        "touch_date": "2026-10-18",
        "window_days": 7,
        "metrics": [
            {"metric": "conversion", "label": "转化率 conversion", "variant": "t", "comparison": comparison},
            {"metric": "conversion", "label": "转化率 conversion", "variant": "control", "comparison": None},
        ],
        "segment_tag": "lifecycle_stage",
        "segments": {
            "new": [
                {
                    "metric": "conversion",
                    "label": "转化率 conversion",
                    "variant": "t",
                    "comparison": comparison,
                }
            ]
        },
        "funnel": [{"variant": "t", "counts": {"reached": 10, "order": 2}}],
    }
    lift = charts.experiment_lift(result, "en")
    assert list(lift.data[0].x) == ["conversion"] and list(lift.data[0].y) == pytest.approx([20.0])
    assert list(lift.data[0].error_y.array) == pytest.approx([20.0])
    assert list(lift.data[0].error_y.arrayminus) == pytest.approx([10.0])
    per_segment = charts.segment_lift(result, "conversion", {"new": "新客"}, "zh")
    assert list(per_segment.data[0].x) == ["新客"]
    funnel = charts.experiment_funnel(result, [("reached", "触达 reached"), ("order", "下单 order")], "zh")
    assert list(funnel.data[0].y) == ["触达", "下单"] and list(funnel.data[0].x) == [10, 2]


def test_histogram_and_bars() -> None:
    figure = charts.histogram([0.0, 1.0, 3.0], [4, 6], "en", "h")
    assert list(figure.data[0].x) == [0.5, 2.0] and list(figure.data[0].width) == [1.0, 2.0]
    bars = charts.value_bars([("yes", 3), ("no", 1)], "zh", "b")
    assert list(bars.data[0].y) == [3, 1] and bars.layout.yaxis.title.text == "用户数"
