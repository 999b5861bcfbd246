"""RFM: recency, frequency and monetary value per user, scores, the eight classes and the promo playbook.

Everything is one Ibis expression (no engine is touched here), so the same
definition runs on DuckDB, Spark or any other Ibis backend. Money stays DECIMAL
and every comparison with a population mean is made on exact sums
(``x >= sum / n`` is written ``x * n >= sum``), so engines agree to the cent.
``docs/segments.md`` explains each choice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

import ibis
import ibis.expr.datatypes as dt_types
import ibis.expr.types as ir

from huaxiang.errors import ConfigError
from huaxiang.model.schema import MONEY_PRECISION, MONEY_SCALE

MONEY = dt_types.Decimal(MONEY_PRECISION, MONEY_SCALE)

#: Number of score levels; edges therefore hold ``SCORE_LEVELS - 1`` cut points.
SCORE_LEVELS = 5

#: The eight classes, keyed by (M high, R high, F high).
RFM_CLASSES: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "重要价值客户",
    (True, True, False): "重要发展客户",
    (True, False, True): "重要保持客户",
    (True, False, False): "重要挽留客户",
    (False, True, True): "一般价值客户",
    (False, True, False): "一般发展客户",
    (False, False, True): "一般保持客户",
    (False, False, False): "一般挽留客户",
}

#: Promo playbook of seed 001 (bilingual labels).
PLAYBOOK_DAILY_LOYALTY = "日常维护 daily loyalty"
PLAYBOOK_RAISE_FREQUENCY = "提升频次 raise frequency"
PLAYBOOK_CORE_RECALL = "大促重点召回 core promo recall"
PLAYBOOK_UPSELL_CATEGORY = "引导高单价品类 price sensitive: steer to higher-priced categories"
PLAYBOOK_RECALL = "大促唤回 recall (high order value)"
PLAYBOOK_IGNORE = "忽略 ignore (low order value)"

_EDGE_KEYS = ("r", "f", "m")


def _validate_edges(edges: Mapping[str, Sequence[float]] | None) -> dict[str, list[Decimal]]:
    """Check custom edges: keys among r/f/m, each four strictly increasing numbers."""
    if edges is None:
        return {}
    checked: dict[str, list[Decimal]] = {}
    for key, values in edges.items():
        if key not in _EDGE_KEYS:
            raise ConfigError(
                f"RFM edges: unknown key '{key}'. Allowed keys: {', '.join(_EDGE_KEYS)} "
                "(recency days, frequency, monetary)."
            )
        cuts = [Decimal(str(v)) for v in values]
        if len(cuts) != SCORE_LEVELS - 1:
            raise ConfigError(
                f"RFM edges['{key}']: expected {SCORE_LEVELS - 1} cut points for scores 1-{SCORE_LEVELS}, "
                f"got {len(cuts)}: {list(values)}."
            )
        if any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)):
            raise ConfigError(
                f"RFM edges['{key}']: cut points must be strictly increasing, got {list(values)}."
            )
        checked[key] = cuts
    return checked


def _count_above(value: ir.NumericValue, cuts: list[Decimal]) -> ir.IntegerValue:
    """How many cut points lie strictly below ``value`` (bins are right-closed: (a, b])."""
    total: ir.IntegerValue = ibis.literal(0, type="int64")
    for cut in cuts:
        total = total + (value > ibis.literal(cut)).cast("int64")
    return total


def valid_orders(orders: ir.Table) -> ir.Table:
    """Orders that count: after-sale records (售后单) are excluded; a missing flag counts as valid."""
    if "is_after_sale" not in orders.columns:
        return orders
    return orders.filter(~orders.is_after_sale.fill_null(False))


def day_start(day: dt.date) -> ir.TimestampScalar:
    """Midnight at the start of ``day`` as a timestamp literal (shop local time, naive)."""
    return ibis.timestamp(dt.datetime.combine(day, dt.time.min))


def rfm_table(
    users: ir.Table,
    orders: ir.Table,
    as_of: dt.date,
    window_days: int = 365,
    edges: Mapping[str, Sequence[float]] | None = None,
) -> ir.Table:
    """RFM metrics, scores, class, cell and playbook: one row per user of ``users``.

    Parameters
    ----------
    users
        Canonical users table (only ``user_id`` is read).
    orders
        Canonical orders table: ``user_id``, ``order_time``, ``amount`` (DECIMAL),
        ``is_after_sale`` (optional; after-sale records are not counted).
    as_of
        Snapshot date. Only orders strictly before midnight of ``as_of`` are used.
    window_days
        The window is the ``window_days`` calendar days before ``as_of``, both ends
        of ``[as_of - window_days, as_of - 1]`` included: an order placed any time on
        the day exactly ``window_days`` days before ``as_of`` counts. Column names
        carry the window: ``frequency_365d`` for the default.
    edges
        Optional custom cut points, ``{"r": [...], "f": [...], "m": [...]}``, four
        strictly increasing numbers per key, bins right-closed. F and M: value
        ``<= e1`` scores 1, ``(e1, e2]`` 2, ... ``> e4`` 5. R (in days): ``<= e1``
        scores 5 ... ``> e4`` scores 1. A key left out uses quintiles.

    Returns
    -------
    ibis.Table
        ``user_id, recency_days, frequency_Nd, monetary_Nd, aov_Nd, rfm_r_score,
        rfm_f_score, rfm_m_score, rfm_score, rfm_class, rfm_cell, rfm_playbook``.
        Users without a valid order in the window have frequency 0, monetary 0 and
        NULL recency, average order value, scores, class, cell and playbook.
    """
    if window_days < 1:
        raise ConfigError(f"RFM window_days must be at least 1, got {window_days}.")
    cuts = _validate_edges(edges)
    suffix = f"_{window_days}d"
    frequency_col, monetary_col, aov_col = f"frequency{suffix}", f"monetary{suffix}", f"aov{suffix}"

    window_start = as_of - dt.timedelta(days=window_days)
    valid = valid_orders(orders)
    in_window = valid.filter(
        (valid.order_time >= day_start(window_start)) & (valid.order_time < day_start(as_of))
    )
    # Scores, ranks and population means are taken over the buyers alone (one row each);
    # the users without an order are joined afterwards.
    b = in_window.group_by("user_id").aggregate(
        recency_days=ibis.literal(as_of).delta(in_window.order_time.max().date(), unit="day").cast("int64"),
        **{
            frequency_col: in_window.count().cast("int64"),
            monetary_col: in_window.amount.sum().cast(MONEY),
        },
    )
    population = b.aggregate(
        buyers_=b.count(),
        recency_sum_=b.recency_days.sum(),
        frequency_sum_=b[frequency_col].sum(),
        monetary_sum_=b[monetary_col].sum(),
    )
    b = b.cross_join(population)

    def quintile(*order_by: ir.Value) -> ir.IntegerValue:
        window = ibis.window(order_by=[*order_by, b.user_id])
        return (ibis.ntile(SCORE_LEVELS).over(window) + 1).cast("int64")

    r_score = (
        SCORE_LEVELS - _count_above(b.recency_days, cuts["r"])
        if "r" in cuts
        else quintile(ibis.desc(b.recency_days))
    )
    f_score = 1 + _count_above(b[frequency_col], cuts["f"]) if "f" in cuts else quintile(b[frequency_col])
    m_score = 1 + _count_above(b[monetary_col], cuts["m"]) if "m" in cuts else quintile(b[monetary_col])
    # "x >= the buyers' mean" is evaluated as "x * buyers >= sum" (exact for decimals).
    b = b.mutate(
        **{aov_col: money_mean(b[monetary_col], b[frequency_col])},
        rfm_r_score=r_score,
        rfm_f_score=f_score,
        rfm_m_score=m_score,
        r_high_flag=b.recency_days * b.buyers_ <= b.recency_sum_,
        f_high_flag=b[frequency_col] * b.buyers_ >= b.frequency_sum_,
        m_high_flag=b[monetary_col] * b.buyers_ >= b.monetary_sum_,
        # The shop's average order value in the window: total amount / total orders.
        aov_high_flag=b[monetary_col] * b.frequency_sum_ >= b.monetary_sum_ * b[frequency_col],
    )
    b = b.mutate(
        rfm_score=b.rfm_r_score + b.rfm_f_score + b.rfm_m_score,
        rfm_class=ibis.cases(
            *(
                ((b.m_high_flag == m) & (b.r_high_flag == r) & (b.f_high_flag == f), label)
                for (m, r, f), label in RFM_CLASSES.items()
            )
        ),
        rfm_cell=ibis.literal("R")
        .concat(b.rfm_r_score.cast("string"), "F", b.rfm_f_score.cast("string"))
        .concat("M", b.rfm_m_score.cast("string")),
        rfm_playbook=_playbook(b.rfm_r_score, b.rfm_f_score, b.rfm_m_score, b.aov_high_flag),
    )
    columns = [
        "recency_days",
        frequency_col,
        monetary_col,
        aov_col,
        "rfm_r_score",
        "rfm_f_score",
        "rfm_m_score",
        "rfm_score",
        "rfm_class",
        "rfm_cell",
        "rfm_playbook",
    ]
    t = users.select("user_id").left_join(b.select("user_id", *columns), "user_id")
    zero = ibis.literal(Decimal("0.00"), type=MONEY)
    filled = t.mutate(
        **{frequency_col: t[frequency_col].fill_null(0), monetary_col: t[monetary_col].fill_null(zero)}
    )
    return filled.select("user_id", *columns)


def money_mean(total: ir.NumericValue, count: ir.IntegerValue) -> ir.DecimalValue:
    """``total / count`` as money, rounded half up to the cent, exactly on every engine.

    Dividing a DECIMAL is not portable: DuckDB divides as a double (so 219.675 / 3 can
    come out 73.22), Spark as a wider DECIMAL (73.23). Here the division is on whole
    cents, ``(2 × cents + count) // (2 × count)``, exact for totals below 2^52 cents;
    the whole cents then become money through a double, which holds them exactly
    enough to round back to the same cent on any engine. NULL when ``count`` is 0.
    """
    units = 10**MONEY_SCALE
    cents = (total * units).cast("int64")
    whole = (cents * 2 + count) // (count * 2)
    mean = (whole.cast("float64") / units).cast(MONEY)
    return ibis.ifelse(count > 0, mean, ibis.null(MONEY))


def _playbook(
    r: ir.IntegerValue, f: ir.IntegerValue, m: ir.IntegerValue, aov_high: ir.BooleanValue
) -> ir.StringValue:
    """Seed 001's promo strategy on the 1-5 scores: 5-4 high, 3 mid, 2-1 low."""

    def high(score: ir.IntegerValue) -> ir.BooleanValue:
        return score >= 4

    def mid(score: ir.IntegerValue) -> ir.BooleanValue:
        return score == 3

    return ibis.cases(
        (high(m) & high(f) & high(r), PLAYBOOK_DAILY_LOYALTY),
        (high(m) & mid(f) & high(r), PLAYBOOK_RAISE_FREQUENCY),
        (high(m) & high(f) & ~high(r), PLAYBOOK_CORE_RECALL),
        (mid(m) & high(f) & high(r), PLAYBOOK_UPSELL_CATEGORY),
        (mid(m) & mid(f) & high(r), PLAYBOOK_RAISE_FREQUENCY),
        (aov_high, PLAYBOOK_RECALL),
        else_=PLAYBOOK_IGNORE,
    )
