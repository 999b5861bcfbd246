"""The strategy playbook 策略手册: segments mapped to actions, and a campaign plan from it.

A playbook is YAML (the standard one is ``huaxiang/templates/playbook.yaml``): rules, each a
segment (an audience definition over the snapshot's tags, e.g. ``rfm_class = '重要价值客户'``
or ``lifecycle_stage = 'new'``) with an action: a coupon, a hook item (引流品), a "first 3
orders" offer (新人前三单), a member task of kind traffic / incentive / share (引流型 /
激励型 / 分享型任务) or content.

:func:`plan_campaign` gives per rule the segment's size, the users it gets when every user
takes only the first rule they match, its spending power and a personalised coupon
threshold (seed 003: groups able to spend 100 / 50 / 20 get thresholds of 100 / 50 / 20).
Spending power is the median of ``coupon.spending_power_tag`` (by default ``aov_365d``, the
purchasing-power basis: 365-day spend of valid orders per order) over the segment's members
with a value; the threshold is it rounded to ``coupon.round_to`` yuan, and the coupon's
value ``coupon.discount_share`` of the threshold. The sizes and medians are one Ibis query.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, model_validator

from huaxiang.errors import ConfigError, did_you_mean

ActionKind = Literal["coupon", "hook_item", "first_orders", "member_task", "content"]
TaskKind = Literal["traffic", "incentive", "share"]
ACTION_LABELS = {
    "coupon": "优惠券 coupon",
    "hook_item": "引流品 hook item",
    "first_orders": "新人前三单 first 3 orders",
    "member_task": "会员任务 member task",
    "content": "内容 content",
}
TASK_LABELS = {"traffic": "引流型 traffic", "incentive": "激励型 incentive", "share": "分享型 share"}
PLAYBOOK_TEMPLATE = "playbook.yaml"


class Action(BaseModel):
    """What to do for a segment."""

    model_config = ConfigDict(extra="forbid")

    kind: ActionKind
    name_zh: str
    name_en: str
    task_kind: TaskKind | None = None
    coupon: bool = False
    """The action includes a coupon with the segment's personalised threshold."""
    channel: str | None = None

    @model_validator(mode="after")
    def _task(self) -> Action:
        if self.kind == "member_task" and self.task_kind is None:
            raise ValueError("a member_task action needs task_kind: traffic, incentive or share")
        if self.kind != "member_task" and self.task_kind is not None:
            raise ValueError(f"task_kind applies to member_task actions only, not to {self.kind}")
        if self.kind == "coupon":
            self.coupon = True
        return self


class Rule(BaseModel):
    """A segment and its action."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    name_zh: str
    name_en: str
    segment: str
    action: Action


class CouponPolicy(BaseModel):
    """How a coupon threshold follows a segment's spending power."""

    model_config = ConfigDict(extra="forbid")

    spending_power_tag: str = "aov_365d"
    round_to: Annotated[float, Field(gt=0)] = 10
    discount_share: Annotated[float, Field(gt=0, lt=1)] = 0.2


class Playbook(BaseModel):
    """A strategy playbook: the coupon policy and the rules, in order."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    coupon: CouponPolicy = Field(default_factory=CouponPolicy)
    rules: Annotated[list[Rule], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Playbook:
        ids = [rule.id for rule in self.rules]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(twice)}")
        return self


def load_playbook(path: str | Path | None = None) -> tuple[Playbook, str]:
    """A playbook from ``path`` (default: the standard one shipped with huaxiang) and its source name."""
    from huaxiang.yamlfile import load_yaml, validate_file

    if path is None:
        resource = resources.files("huaxiang.templates").joinpath(PLAYBOOK_TEMPLATE)
        with resources.as_file(resource) as file:
            data, node = load_yaml(file)
            return validate_file(file, Playbook, data, node), f"huaxiang/templates/{PLAYBOOK_TEMPLATE}"
    file = Path(path)
    data, node = load_yaml(file)
    return validate_file(file, Playbook, data, node), str(file)


def coupon_threshold(spending_power: float | None, policy: CouponPolicy) -> tuple[float | None, float | None]:
    """The threshold (spending power rounded to ``round_to``, at least one step) and the coupon value."""
    if spending_power is None or not math.isfinite(spending_power) or spending_power <= 0:
        return None, None
    step = policy.round_to
    threshold = max(step, math.floor(spending_power / step + 0.5) * step)
    value = max(1.0, float(round(threshold * policy.discount_share)))
    return float(threshold), value


@dataclass(frozen=True)
class PlanRow:
    """One rule of the plan: segment size, first-match users, action, spending power, coupon."""

    rule: str
    name_zh: str
    name_en: str
    segment: str
    size: int
    assigned: int
    action_kind: str
    action_label: str
    action_zh: str
    action_en: str
    task_kind: str | None
    spending_power: float | None
    coupon_threshold: float | None
    coupon_value: float | None


@dataclass
class CampaignPlan:
    """The plan over one snapshot."""

    as_of: str
    users: int
    playbook: str
    rows: list[PlanRow]

    @property
    def unassigned(self) -> int:
        return self.users - sum(row.assigned for row in self.rows)

    def row(self, rule: str) -> PlanRow:
        for item in self.rows:
            if item.rule == rule:
                return item
        raise KeyError(rule)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "users": self.users,
            "playbook": self.playbook,
            "unassigned": self.unassigned,
            "rows": [asdict(r) for r in self.rows],
        }


def plan_table(
    tags: ir.Table,
    playbook: Playbook,
    conditions: list[ir.BooleanValue],
    *,
    source: str = "",
    as_of: str = "",
) -> CampaignPlan:
    """The plan from a tags table and one Ibis condition per rule (in the playbook's order)."""
    tag = playbook.coupon.spending_power_tag
    if tag not in tags.columns:
        raise ConfigError(
            f"{source}: coupon.spending_power_tag: no tag '{tag}' in the snapshot."
            f"{did_you_mean(tag, tags.columns)} Build it, or name a number tag such as aov_365d."
        )
    spend = tags[tag].cast("float64")
    matched = [condition.fill_null(False) for condition in conditions]
    first = ibis.cases(*[(m, i) for i, m in enumerate(matched)], else_=-1)
    measures: dict[str, Any] = {"users": tags.count()}
    for i, m in enumerate(matched):
        measures[f"size_{i}"] = ibis.ifelse(m, 1, 0).sum()
        measures[f"assigned_{i}"] = ibis.ifelse(first == i, 1, 0).sum()
        measures[f"spend_{i}"] = spend.median(where=m & spend.notnull())
    row = tags.aggregate(**measures).to_pyarrow().to_pylist()[0]
    rows = []
    for i, rule in enumerate(playbook.rules):
        power = row[f"spend_{i}"]
        threshold, value = coupon_threshold(power, playbook.coupon)
        action = rule.action
        label = ACTION_LABELS[action.kind] + (
            f" · {TASK_LABELS[action.task_kind]}" if action.task_kind else ""
        )
        rows.append(
            PlanRow(
                rule=rule.id,
                name_zh=rule.name_zh,
                name_en=rule.name_en,
                segment=rule.segment,
                size=int(row[f"size_{i}"] or 0),
                assigned=int(row[f"assigned_{i}"] or 0),
                action_kind=action.kind,
                action_label=label,
                action_zh=action.name_zh,
                action_en=action.name_en,
                task_kind=action.task_kind,
                spending_power=float(power) if power is not None else None,
                coupon_threshold=threshold if action.coupon else None,
                coupon_value=value if action.coupon else None,
            )
        )
    return CampaignPlan(as_of=as_of, users=int(row["users"]), playbook=source, rows=rows)


def plan_campaign(
    workspace_dir: str | Path, *, as_of: dt.date | None = None, playbook: str | Path | None = None
) -> CampaignPlan:
    """Per playbook rule: the segment's size, its action and its personalised coupon threshold.

    Parameters
    ----------
    workspace_dir
        The workspace (a built snapshot).
    as_of
        The snapshot (default: the latest).
    playbook
        A playbook YAML file (default: the standard playbook).

    Raises
    ------
    huaxiang.errors.ConfigError
        The playbook is malformed, or a rule's segment does not fit the snapshot's tags
        (the message names the file, the rule and the tag, with a "did you mean").
    """
    from huaxiang.audience import AudienceEngine, AudienceError
    from huaxiang.audience.evaluate import to_ibis

    book, source = load_playbook(playbook)
    engine = AudienceEngine(workspace_dir, as_of)
    con = ibis.duckdb.connect()
    try:
        nodes = []
        for index, rule in enumerate(book.rules):
            try:
                nodes.append(engine.definition(rule.segment))
            except AudienceError as error:
                raise ConfigError(f"{source}: rules[{index}] ({rule.id}).segment: {error}") from None
        hierarchical = frozenset(n for n, s in engine.index.specs.items() if s.type == "hierarchical_enum")
        tags = con.read_parquet(engine.snapshot.tags_path)

        def members(name: str) -> list[str]:
            return engine.user_ids(engine.members("@" + name))

        conditions = [to_ibis(node, tags, members, hierarchical) for node in nodes]
        return plan_table(tags, book, conditions, source=source, as_of=engine.as_of)
    finally:
        con.disconnect()
        engine.close()
