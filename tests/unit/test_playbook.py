"""The strategy playbook: seed 003's personalised coupon thresholds, the standard playbook on the
sample shop, and the errors a broken playbook gives."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from analysis_shop import sample_shop
from typer.testing import CliRunner

from huaxiang.analysis.playbook import (
    CouponPolicy,
    Playbook,
    coupon_threshold,
    load_playbook,
    plan_campaign,
    plan_table,
)
from huaxiang.audience import from_text, to_ibis
from huaxiang.cli import app
from huaxiang.errors import ConfigError

SEED_003 = {
    "coupon": {"spending_power_tag": "aov_365d", "round_to": 10, "discount_share": 0.2},
    "rules": [
        {
            "id": f"group_{name}",
            "name_zh": f"{name}类人群",
            "name_en": f"group {name}",
            "segment": f"spend_group = '{name}'",
            "action": {"kind": "coupon", "name_zh": "满减券", "name_en": "threshold coupon"},
        }
        for name in ("A", "B", "C")
    ],
}


def test_seed_003_thresholds_follow_spending_power() -> None:
    """A spends about 100, B 50, C 20: thresholds 100 / 50 / 20 (seed 003, case 3)."""
    rng = np.random.default_rng(3)
    frames = []
    for name, spend, users in (("A", 100, 300), ("B", 50, 500), ("C", 20, 200)):
        frames.append(
            pd.DataFrame(
                {
                    "user_id": [f"{name}{i}" for i in range(users)],
                    "spend_group": name,
                    "aov_365d": np.round(spend * rng.lognormal(0, 0.15, users), 2),
                }
            )
        )
    frames.append(pd.DataFrame({"user_id": ["nobody"], "spend_group": [None], "aov_365d": [None]}))
    tags = ibis.memtable(pd.concat(frames, ignore_index=True))
    playbook = Playbook.model_validate(SEED_003)
    conditions = [to_ibis(from_text(rule.segment), tags) for rule in playbook.rules]
    plan = plan_table(tags, playbook, conditions, source="seed003")
    thresholds = {row.rule: row.coupon_threshold for row in plan.rows}
    assert thresholds == {"group_A": 100, "group_B": 50, "group_C": 20}
    assert {row.rule: row.coupon_value for row in plan.rows} == {"group_A": 20, "group_B": 10, "group_C": 4}
    assert [row.size for row in plan.rows] == [300, 500, 200]
    assert plan.users == 1001 and plan.unassigned == 1


def test_threshold_rounding() -> None:
    policy = CouponPolicy(round_to=5, discount_share=0.1)
    assert coupon_threshold(47.4, policy) == (45.0, 4.0)
    assert coupon_threshold(47.6, policy) == (50.0, 5.0)
    assert coupon_threshold(1.0, policy) == (5.0, 1.0)  # at least one step
    assert coupon_threshold(None, policy) == (None, None)


def test_first_match_assigns_each_user_once() -> None:
    tags = ibis.memtable(
        pd.DataFrame(
            {
                "user_id": ["u1", "u2", "u3"],
                "vip": [True, True, False],
                "new": [True, False, True],
                "aov_365d": [10.0, 20.0, 30.0],
            }
        )
    )
    playbook = Playbook.model_validate(
        {
            "rules": [
                {
                    "id": "vip",
                    "name_zh": "会员",
                    "name_en": "vip",
                    "segment": "vip",
                    "action": {"kind": "content", "name_zh": "内容", "name_en": "content"},
                },
                {
                    "id": "new",
                    "name_zh": "新客",
                    "name_en": "new",
                    "segment": "new",
                    "action": {
                        "kind": "first_orders",
                        "coupon": True,
                        "name_zh": "前三单",
                        "name_en": "first 3",
                    },
                },
            ]
        }
    )
    plan = plan_table(tags, playbook, [to_ibis(from_text(r.segment), tags) for r in playbook.rules])
    assert (plan.row("vip").size, plan.row("vip").assigned) == (2, 2)
    assert (plan.row("new").size, plan.row("new").assigned) == (2, 1)
    assert plan.row("vip").coupon_threshold is None  # content carries no coupon
    assert plan.row("new").spending_power == 20.0 and plan.row("new").coupon_threshold == 20.0


def test_standard_playbook_loads_with_bilingual_names() -> None:
    playbook, source = load_playbook()
    assert source.endswith("playbook.yaml")
    kinds = {rule.action.kind for rule in playbook.rules}
    assert kinds == {"coupon", "hook_item", "first_orders", "member_task", "content"}
    assert {rule.action.task_kind for rule in playbook.rules} >= {"traffic", "incentive", "share"}
    for rule in playbook.rules:
        assert rule.name_zh and rule.name_en and rule.action.name_zh and rule.action.name_en


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n- id: a\n  name_zh: 甲\n  name_en: a\n  segment: x\n"
            "  action: {kind: member_task, name_zh: 任务, "
            "name_en: task}\n",
            "a member_task action needs task_kind",
        ),
        (
            "rules:\n- id: a\n  name_zh: 甲\n  name_en: a\n  segment: x\n"
            "  action: {kind: voucher, name_zh: 券, "
            "name_en: v}\n",
            r"playbook.yaml:6: rules\[0\].action.kind: got .voucher.; allowed",
        ),
        ("rules: []\n", "rules"),
        ("coupon: {round_to: 0}\nrules: []\n", "coupon.round_to"),
    ],
)
def test_malformed_playbooks_name_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "playbook.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_playbook(path)


@pytest.mark.slow
def test_plan_campaign_on_the_sample_shop(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    shop = sample_shop(tmp_path_factory)
    plan = plan_campaign(shop)
    tags = pq.read_table(shop / "snapshots" / "2026-10-31" / "tags.parquet").to_pandas()
    new = plan.row("new_first_orders")
    members = tags[tags.lifecycle_stage == "new"]
    assert new.size == len(members) == new.assigned  # first rule: nobody is taken before
    assert new.spending_power == pytest.approx(float(members.aov_365d.astype(float).median()))
    assert new.coupon_threshold == max(10.0, round(new.spending_power / 10) * 10)
    important = plan.row("rfm_important_value")
    assert important.size == int((tags.rfm_class == "重要价值客户").sum())
    assert important.assigned <= important.size and important.coupon_threshold is None
    assert plan.unassigned == len(tags) - sum(row.assigned for row in plan.rows)

    broken = tmp_path / "mine.yaml"
    broken.write_text(
        "rules:\n- id: typo\n  name_zh: 错\n  name_en: typo\n  segment: \"rfm_clas = '重要价值客户'\"\n"
        "  action: {kind: content, name_zh: 内容, name_en: content}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        ConfigError, match=r"mine.yaml: rules\[0\] \(typo\).segment: .*Did you mean 'rfm_class'"
    ):
        plan_campaign(shop, playbook=broken)

    runner = CliRunner()
    shown = runner.invoke(app, ["plan-campaign", "-w", str(shop), "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["rows"][0]["rule"] == "new_first_orders" and data["rows"][0]["size"] == new.size
    printed = runner.invoke(app, ["plan-campaign", "-w", str(shop), "--playbook", str(broken)])
    assert printed.exit_code == 2 and "Did you mean 'rfm_class'" in printed.output
