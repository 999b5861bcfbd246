"""Value grid 用户分层 (SPEC item 8, seed 002): historical spend × recency → 21 value layers.

Buyers fall in one of 4 spend bins × 5 recency bins = 20 layers (1-20, higher is
more valuable); users without a valid order share layer 0. One Ibis expression,
no engine touched. ``docs/segments.md`` explains the ordering and the strategies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError
from huaxiang.segment.rfm import MONEY, day_start, valid_orders

#: Seed 002's spend cut points: 0 | (0,1000] | (1000,3000] | (3000,10000] | 10000+.
SPEND_EDGES: tuple[float, ...] = (0, 1000, 3000, 10000)
#: Seed 002's recency cut points in days: (0,30] | (30,60] | (60,90] | (90,150] | 150+.
RECENCY_EDGES: tuple[int, ...] = (30, 60, 90, 150)

NEVER_BOUGHT_NAME = "L0 未购 never bought"


@dataclass(frozen=True)
class ValueLayer:
    """One layer of the grid: its number, its bins (None for layer 0), label and strategy."""

    layer: int
    spend_bin: int
    recency_bin: int | None
    name: str
    strategy_zh: str
    strategy_en: str

    @property
    def strategy(self) -> str:
        """The bilingual strategy label, as in the ``value_layer_strategy`` column."""
        return f"{self.strategy_zh} {self.strategy_en}"


# Strategy text by (spend tier, recency tier); tiers are derived from the bins in _strategy().
_STRATEGY_TEXT: dict[tuple[str, str], tuple[str, str]] = {
    ("none", ""): ("新客转化:新人大额红包券、产品试用", "activation: new-customer coupon, product trial"),
    ("high", "recent"): (
        "核心维系:老客关怀、生日礼、周年礼、开放裂变拉新",
        "retention: VIP care, birthday and anniversary gifts, referral rights",
    ),
    ("high", "cooling"): (
        "重点挽留:专属回访、高额券锁定大促",
        "save: personal outreach, high-value coupon before they lapse",
    ),
    ("high", "lapsed"): ("高价值召回:强力召回券、流失原因回访", "win-back: strong offer, ask why they left"),
    ("mid", "recent"): (
        "提升客单:品类渗透、搭配购、满减券",
        "grow: cross-category recommendations, bundles, spend-threshold coupons",
    ),
    ("mid", "cooling"): ("促活:到期提醒、满减券", "reactivate: reminders, spend-threshold coupon"),
    ("mid", "lapsed"): ("低成本唤回:大促短信/推送", "low-cost win-back: big-promo SMS and push"),
    ("low", "recent"): ("促复购:第二单优惠、引流品", "repeat: second-order coupon, hook items"),
    ("low", "cooling"): ("轻触达:活动提醒", "light touch: promo reminders"),
    ("low", "lapsed"): ("仅大促广播:控制成本", "minimal: big-promo broadcasts only"),
}


def _strategy(spend_bin: int, recency_bin: int | None, spend_bins: int, recency_bins: int) -> tuple[str, str]:
    """Strategy for a cell: spend tier low (bin 1) / mid / high (upper half), recency tier
    recent (first ~2/5 of the bins) / cooling / lapsed (the last bin)."""
    if spend_bin == 0 or recency_bin is None:
        return _STRATEGY_TEXT[("none", "")]
    if spend_bin * 2 > spend_bins:
        spend_tier = "high"
    elif spend_bin == 1:
        spend_tier = "low"
    else:
        spend_tier = "mid"
    if recency_bin == recency_bins and recency_bins > 1:
        recency_tier = "lapsed"
    elif recency_bin <= max(1, (recency_bins - 1) // 2):
        recency_tier = "recent"
    else:
        recency_tier = "cooling"
    return _STRATEGY_TEXT[(spend_tier, recency_tier)]


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _spend_label(spend_bin: int, edges: Sequence[Decimal]) -> tuple[str, str]:
    if spend_bin == len(edges):
        text = f"{_number(edges[-1])}+"
    else:
        text = f"({_number(edges[spend_bin - 1])},{_number(edges[spend_bin])}]"
    return f"消费{text}", f"spend {text}"


def _recency_label(recency_bin: int, edges: Sequence[int]) -> tuple[str, str]:
    if recency_bin == 1:
        return f"近{edges[0]}天", f"≤{edges[0]}d"
    if recency_bin == len(edges) + 1:
        return f"{edges[-1]}天以上", f">{edges[-1]}d"
    span = f"({edges[recency_bin - 2]},{edges[recency_bin - 1]}]"
    return f"{span}天", f"{span}d"


def _validate(spend_edges: Sequence[float], recency_edges: Sequence[int]) -> tuple[list[Decimal], list[int]]:
    spend = [Decimal(str(v)) for v in spend_edges]
    if not spend or spend[0] < 0 or any(b <= a for a, b in zip(spend, spend[1:], strict=False)):
        raise ConfigError(
            f"value grid spend_edges: expected at least one strictly increasing number, the first >= 0 "
            f"(e.g. {list(SPEND_EDGES)}), got {list(spend_edges)}."
        )
    if (
        not recency_edges
        or any(not isinstance(v, int) or isinstance(v, bool) for v in recency_edges)
        or recency_edges[0] < 1
        or any(b <= a for a, b in zip(recency_edges, recency_edges[1:], strict=False))
    ):
        raise ConfigError(
            f"value grid recency_edges: expected at least one strictly increasing whole number of days >= 1 "
            f"(e.g. {list(RECENCY_EDGES)}), got {list(recency_edges)}."
        )
    return spend, list(recency_edges)


def value_layers(
    spend_edges: Sequence[float] = SPEND_EDGES, recency_edges: Sequence[int] = RECENCY_EDGES
) -> list[ValueLayer]:
    """Every layer of the grid, 0 first: ``1 + len(spend_edges) × (len(recency_edges) + 1)`` layers.

    Spend dominates: every layer of spend bin ``s + 1`` ranks above every layer of bin
    ``s``; within a spend bin, more recent ranks higher. Layer of a buyer =
    ``(spend_bin − 1) × R + (R − recency_bin) + 1`` with ``R`` recency bins.
    """
    spend, recency = _validate(spend_edges, recency_edges)
    spend_bins, recency_bins = len(spend), len(recency) + 1
    zh, en = _STRATEGY_TEXT[("none", "")]
    layers = [ValueLayer(0, 0, None, NEVER_BOUGHT_NAME, zh, en)]
    for spend_bin in range(1, spend_bins + 1):
        for recency_bin in range(recency_bins, 0, -1):
            layer = (spend_bin - 1) * recency_bins + (recency_bins - recency_bin) + 1
            spend_zh, spend_en = _spend_label(spend_bin, spend)
            recency_zh, recency_en = _recency_label(recency_bin, recency)
            name = f"L{layer} {spend_zh}·{recency_zh} {spend_en}, {recency_en}"
            zh, en = _strategy(spend_bin, recency_bin, spend_bins, recency_bins)
            layers.append(ValueLayer(layer, spend_bin, recency_bin, name, zh, en))
    return layers


#: The 21 layers of seed 002's grid, by layer number: name and zh / en strategy.
VALUE_LAYER_STRATEGIES: dict[int, dict[str, str]] = {
    v.layer: {"name": v.name, "zh": v.strategy_zh, "en": v.strategy_en} for v in value_layers()
}


def _count_above(value: ir.NumericValue, cuts: Sequence[Decimal | int]) -> ir.IntegerValue:
    """How many cut points lie strictly below ``value`` (bins are right-closed: (a, b])."""
    total: ir.IntegerValue = ibis.literal(0, type="int64")
    for cut in cuts:
        total = total + (value > ibis.literal(cut)).cast("int64")
    return total


def value_grid_table(
    users: ir.Table,
    orders: ir.Table,
    as_of: dt.date,
    spend_edges: Sequence[float] = SPEND_EDGES,
    recency_edges: Sequence[int] = RECENCY_EDGES,
) -> ir.Table:
    """Historical spend, recency, their bins and the value layer: one row per user of ``users``.

    Parameters
    ----------
    users
        Canonical users table (only ``user_id`` is read).
    orders
        Canonical orders table: ``user_id``, ``order_time``, ``amount`` (DECIMAL),
        ``is_after_sale`` (optional; after-sale records are not counted).
    as_of
        Snapshot date. All valid orders strictly before midnight of ``as_of`` count
        (no window: historical spend is lifetime spend).
    spend_edges
        Strictly increasing cut points, the first ``>= 0``; bins right-closed.
        ``spend_bin`` = how many edges lie strictly below the spend: 0 for a spend
        ``<= spend_edges[0]`` (0: never bought), ``len(spend_edges)`` above the last.
    recency_edges
        Strictly increasing whole days; ``recency_bin`` 1 for ``days <= e1``, 2 for
        ``(e1, e2]``, ... ``len(recency_edges) + 1`` above the last edge.

    Returns
    -------
    ibis.Table
        ``user_id, historical_spend, days_since_last_order, spend_bin, recency_bin,
        value_layer, value_layer_name, value_layer_strategy``. Users in spend bin 0
        (no valid order, by default) have ``value_layer`` 0 and a NULL recency bin;
        users without a valid order also have NULL ``days_since_last_order``.
    """
    spend_cuts, recency_cuts = _validate(spend_edges, recency_edges)
    layers = value_layers(spend_edges, recency_edges)
    recency_bins = len(recency_cuts) + 1

    valid = valid_orders(orders)
    before = valid.filter(valid.order_time < day_start(as_of))
    per_user = before.group_by("user_id").aggregate(
        last_order_time=before.order_time.max(),
        amount_sum=before.amount.sum().cast(MONEY),
    )
    base = (
        users.select("user_id")
        .left_join(per_user, "user_id")
        .select("user_id", "last_order_time", "amount_sum")
    )
    spend = base.amount_sum.fill_null(ibis.literal(Decimal("0.00"), type=MONEY)).cast(MONEY)
    days = ibis.literal(as_of).delta(base.last_order_time.date(), unit="day").cast("int64")
    t = base.mutate(historical_spend=spend, days_since_last_order=days)
    spend_bin = _count_above(t.historical_spend, spend_cuts)
    in_grid = spend_bin > 0
    recency_bin = ibis.ifelse(
        in_grid & t.days_since_last_order.notnull(),
        1 + _count_above(t.days_since_last_order, recency_cuts),
        ibis.null("int64"),
    )
    t = t.mutate(spend_bin=spend_bin, recency_bin=recency_bin)
    layer = ibis.ifelse(
        t.recency_bin.notnull(),
        (t.spend_bin - 1) * recency_bins + (recency_bins - t.recency_bin) + 1,
        0,
    ).cast("int64")
    t = t.mutate(value_layer=layer)
    t = t.mutate(
        value_layer_name=ibis.cases(*((t.value_layer == v.layer, v.name) for v in layers)),
        value_layer_strategy=ibis.cases(*((t.value_layer == v.layer, v.strategy) for v in layers)),
    )
    return t.select(
        "user_id",
        "historical_spend",
        "days_since_last_order",
        "spend_bin",
        "recency_bin",
        "value_layer",
        "value_layer_name",
        "value_layer_strategy",
    )
