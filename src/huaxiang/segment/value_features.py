"""The banded features of the fifteen value groups (15大靶群), computed by the engine.

The seed's model reads gender, age, city tier, member-score band, browse-count
band, purchase-count band and purchasing power. Each is turned into a band (a
text label with a known order) by one Ibis expression over the canonical tables:

============================  ==============================================================
feature                       bands
============================  ==============================================================
``gender``                    male, female, unknown (nominal: any two values are neighbours)
``age_band``                  0-15 .. 56+ (the demographics chain, imputation included)
``city_tier``                 1 .. 6 (the demographics chain: real-name, declared, shipping)
``member_score_band``         quantile bands of ``users.member_score`` (else ``member_level``)
``browse_band``               0, then quantile bands of views and visits in the window
``purchase_band``             0, then quantile bands of valid orders in the window
                              (purchase events when the data has no orders)
``purchasing_power``          none, low, mid, high: terciles of the window's average order value
============================  ==============================================================

A user's missing value is the band ``unknown``, which the segmenter treats as a
neighbour of every band of its feature. A feature whose inputs the data lacks is
left out and recorded with the reason. The value measured per user is the
window's valid spend (ARPU), or the number of purchases when the data has no
amounts (JData): :attr:`ValueFeatures.measure` says which.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError, MissingInputError
from huaxiang.segment.demographics import AGE_BANDS, demographics_table
from huaxiang.segment.rfm import day_start, valid_orders

UNKNOWN = "unknown"
#: The seven features of the seed, in the order the grid and the names use them.
FEATURES: tuple[str, ...] = (
    "gender",
    "age_band",
    "city_tier",
    "member_score_band",
    "browse_band",
    "purchase_band",
    "purchasing_power",
)
FEATURE_NAMES: dict[str, tuple[str, str]] = {
    "gender": ("性别", "gender"),
    "age_band": ("年龄段", "age band"),
    "city_tier": ("城市等级", "city tier"),
    "member_score_band": ("京享值分段", "member-score band"),
    "browse_band": ("浏览次数分段", "browse-count band"),
    "purchase_band": ("购买次数分段", "purchase-count band"),
    "purchasing_power": ("购买力", "purchasing power"),
}
#: Features whose values have no order: any two of them are neighbours.
NOMINAL: frozenset[str] = frozenset({"gender"})
POWER_LEVELS: tuple[str, ...] = ("none", "low", "mid", "high")
#: Events that count as browsing (浏览).
BROWSE_EVENTS: tuple[str, ...] = ("view", "visit")
#: Value groups need at least this many features; fewer say too little to group on.
MIN_FEATURES = 3

_AGE_COLUMNS = ("real_name_age", "birth_date", "age", "age_band", "profile_age")
_CITY_COLUMNS = ("real_name_city", "city", "city_tier")


@dataclass(frozen=True)
class ValueFeatures:
    """Per-user bands and value: an Ibis table plus what each feature's bands are and what is missing.

    ``table`` has ``user_id``, one text column per present feature and ``value``
    (DECIMAL spend, or the purchase count). ``levels`` gives each present feature's
    bands in order (``unknown`` excluded); ``missing`` maps absent features to why.
    """

    table: ir.Table
    present: tuple[str, ...]
    levels: dict[str, list[str]]
    missing: dict[str, str]
    measure: str
    sources: dict[str, str] = field(default_factory=dict)
    """Where a feature came from when there is a choice (``member_score_band``: ``member_level``)."""

    def grid(self) -> ir.Table:
        """The occupied cells: one row per combination of bands, with ``users`` and ``value`` summed.

        Ordered by the bands: k-means starts from rows picked by position, so the same data
        must come in the same order from every engine.
        """
        t = self.table
        cells = t.group_by(list(self.present)).aggregate(users=t.count(), value=t.value.sum())
        return cells.order_by(list(self.present))


def value_features(
    tables: Mapping[str, ir.Table],
    as_of: dt.date,
    *,
    window_days: int = 365,
    bands: int = 4,
    features: Sequence[str] = FEATURES,
    materialise: Callable[[ir.Table], ir.Table] | None = None,
) -> ValueFeatures:
    """The banded features and the value of every user, as of ``as_of``.

    Parameters
    ----------
    tables
        The canonical tables present, already cut at ``as_of`` (``users`` required).
    as_of
        Snapshot date; the window is the ``window_days`` days before it.
    window_days
        Days of orders and events that count (browse, purchases, spend).
    bands
        Quantile bands of member score, browse count and purchase count (2-10).
    features
        The features to use (a subset of :data:`FEATURES`).
    materialise
        Runs the per-user numbers into an engine table once (the build's temporary
        tables); without it every later query recomputes them.

    Raises
    ------
    MissingInputError
        Fewer than :data:`MIN_FEATURES` features exist in the data, or nothing measures value.
    ConfigError
        An unknown feature, or ``window_days`` / ``bands`` out of range.
    """
    unknown = [name for name in features if name not in FEATURES]
    if unknown:
        raise ConfigError(f"value groups: unknown feature {unknown[0]!r}. Features: {', '.join(FEATURES)}.")
    if window_days < 1:
        raise ConfigError(f"value groups: window_days must be at least 1, got {window_days}.")
    if not 2 <= bands <= 10:
        raise ConfigError(f"value groups: bands must be from 2 to 10, got {bands}.")
    users = tables["users"]
    orders = _usable(tables.get("orders"), ("user_id", "order_time"))
    events = _usable(tables.get("events"), ("user_id", "event_time", "event_type"))
    start, end = day_start(as_of - dt.timedelta(days=window_days)), day_start(as_of)
    measure = "revenue" if orders is not None and "amount" in orders.columns else "purchases"

    purchases = _purchases(orders, events, start, end)
    if purchases is None:
        raise MissingInputError(
            "value groups measure value by orders (or purchase events); the data has neither "
            "orders with user_id and order_time nor events."
        )
    missing: dict[str, str] = {}
    sources: dict[str, str] = {}
    has_ship = orders is not None and bool({"ship_city", "ship_city_tier"} & set(orders.columns))
    score_column = next((c for c in ("member_score", "member_level") if c in users.columns), None)
    absent = {
        "gender": None if "gender" in users.columns else "column users.gender",
        "age_band": None
        if set(_AGE_COLUMNS) & set(users.columns)
        else "none of users." + ", users.".join(_AGE_COLUMNS),
        "city_tier": None
        if set(_CITY_COLUMNS) & set(users.columns) or has_ship
        else "none of users.real_name_city, users.city, users.city_tier, orders.ship_city",
        "member_score_band": None if score_column else "column users.member_score (or users.member_level)",
        "browse_band": None if events is not None else "table events (event_type, event_time)",
        "purchase_band": None,
        "purchasing_power": None if measure == "revenue" else "column orders.amount",
    }
    missing = {name: str(why) for name, why in absent.items() if name in features and why is not None}
    present = tuple(name for name in FEATURES if name in features and name not in missing)
    if len(present) < MIN_FEATURES:
        reasons = "; ".join(f"{name} ({why})" for name, why in missing.items())
        raise MissingInputError(
            f"value groups need at least {MIN_FEATURES} of the features {', '.join(FEATURES)}; "
            f"the data gives only {', '.join(present) or 'none'}. Missing: {reasons}."
        )

    # One row per user with the raw numbers, materialised once (when the caller can): the
    # cut points, the grid and the assignment all read it.
    base = (
        users.select("user_id")
        .left_join(purchases, "user_id")
        .select("user_id", purchases=ibis.coalesce(purchases.purchases, 0), spend=purchases.spend)
    )
    if "gender" in present:
        base = base.left_join(users.select("user_id", "gender"), "user_id").drop("user_id_right")
    if "age_band" in present or "city_tier" in present:
        profile = demographics_table(users, orders, as_of)
        wanted = [name for name in ("age_band", "city_tier") if name in present]
        base = base.left_join(profile.select("user_id", *wanted), "user_id").drop("user_id_right")
    if "member_score_band" in present:
        sources["member_score_band"] = f"users.{score_column}"
        score = users.select("user_id", score=users[str(score_column)].cast("float64"))
        base = base.left_join(score, "user_id").drop("user_id_right")
    if "browse_band" in present:
        assert events is not None
        browsing = events.filter(
            events.event_type.isin(list(BROWSE_EVENTS))
            & (events.event_time >= start)
            & (events.event_time < end)
        )
        counts = browsing.group_by("user_id").aggregate(browse=browsing.count())
        base = base.left_join(counts, "user_id").drop("user_id_right")
        base = base.mutate(browse=base.browse.fill_null(0))
    if "purchase_band" in present:
        sources["purchase_band"] = "orders" if orders is not None else "events (purchase)"
    if materialise is not None:
        base = materialise(base)

    edges = _edges(base, present, bands)
    levels: dict[str, list[str]] = {}
    columns: dict[str, ir.Value] = {}
    if "gender" in present:
        levels["gender"] = ["male", "female"]
        columns["gender"] = _known(base.gender.cast("string"), levels["gender"])
    if "age_band" in present:
        levels["age_band"] = list(AGE_BANDS)
        columns["age_band"] = _known(base.age_band, levels["age_band"])
    if "city_tier" in present:
        levels["city_tier"] = [str(tier) for tier in range(1, 7)]
        columns["city_tier"] = _known(base.city_tier.cast("string"), levels["city_tier"])
    if "member_score_band" in present:
        levels["member_score_band"], columns["member_score_band"] = _banded(
            base.score, edges["score"], zero=False
        )
    if "browse_band" in present:
        levels["browse_band"], columns["browse_band"] = _banded(base.browse, edges["browse"], zero=True)
    if "purchase_band" in present:
        levels["purchase_band"], columns["purchase_band"] = _banded(
            base.purchases, edges["purchases"], zero=True
        )
    if "purchasing_power" in present:
        levels["purchasing_power"] = list(POWER_LEVELS)
        aov = base.spend.cast("float64") / base.purchases.cast("float64")
        low, high = edges["aov"]
        columns["purchasing_power"] = ibis.cases(
            (base.purchases == 0, "none"),
            (aov < low, "low"),
            (aov < high, "mid"),
            else_="high",
        )
    value = base.spend.fill_null(Decimal("0.00")) if measure == "revenue" else base.purchases
    table = base.select("user_id", **{name: columns[name] for name in present}, value=value)
    return ValueFeatures(table, present, {name: levels[name] for name in present}, missing, measure, sources)


def _usable(table: ir.Table | None, needed: tuple[str, ...]) -> ir.Table | None:
    return table if table is not None and set(needed) <= set(table.columns) else None


def _purchases(
    orders: ir.Table | None, events: ir.Table | None, start: ir.Value, end: ir.Value
) -> ir.Table | None:
    """``user_id``, ``purchases`` and ``spend`` (DECIMAL, NULL without amounts) in the window."""
    if orders is not None:
        valid = valid_orders(orders)
        valid = valid.filter((valid.order_time >= start) & (valid.order_time < end))
        spend = valid.amount.sum() if "amount" in valid.columns else ibis.null("decimal(18, 2)")
        return valid.group_by("user_id").aggregate(purchases=valid.count(), spend=spend)
    if events is not None:
        bought = events.filter(
            (events.event_type == "purchase") & (events.event_time >= start) & (events.event_time < end)
        )
        return bought.group_by("user_id").aggregate(
            purchases=bought.count(), spend=ibis.null("decimal(18, 2)")
        )
    return None


def _known(value: ir.StringValue, levels: list[str]) -> ir.StringValue:
    return ibis.ifelse(value.isin(levels), value, UNKNOWN).fill_null(UNKNOWN)


def _edges(base: ir.Table, present: Sequence[str], bands: int) -> dict[str, list[float]]:
    """Quantile cut points of the banded numbers, computed by the engine in one query."""
    quantiles = [index / bands for index in range(1, bands)]
    aggregates: dict[str, ir.Value] = {}

    def ask(name: str, value: ir.NumericValue, where: ir.BooleanValue, points: list[float]) -> None:
        for index, point in enumerate(points):
            aggregates[f"{name}_{index}"] = value.cast("float64").quantile(point, where=where)

    if "member_score_band" in present:
        ask("score", base.score, base.score.notnull(), quantiles)
    if "browse_band" in present:
        ask("browse", base.browse, base.browse > 0, quantiles)
    if "purchase_band" in present:
        ask("purchases", base.purchases, base.purchases > 0, quantiles)
    if "purchasing_power" in present:
        aov = base.spend.cast("float64") / base.purchases.cast("float64")
        ask("aov", aov, base.purchases > 0, [1 / 3, 2 / 3])
    if not aggregates:
        return {}
    row: dict[str, Any] = base.aggregate(**aggregates).to_pyarrow().to_pylist()[0]
    found: dict[str, list[float]] = {}
    for key in ("score", "browse", "purchases", "aov"):
        values = [row[name] for name in sorted(row) if name.rsplit("_", 1)[0] == key]
        values = [float(value) for value in values if value is not None]
        if key == "aov":
            found[key] = [round(v, 2) for v in values] if len(values) == 2 else [0.0, 0.0]
        else:
            # Counts and scores are whole numbers: a band is [edge, next edge) of integers.
            found[key] = sorted({float(int(v) + 1) for v in values})
    return found


def _banded(value: ir.NumericValue, edges: list[float], *, zero: bool) -> tuple[list[str], ir.StringValue]:
    """Bands ``[lo, hi)`` of a whole number with labels like ``3-5`` and ``12+``; ``0`` its own band."""
    lows = [1.0] if zero else []
    for edge in edges:
        if not lows or edge > lows[-1]:
            lows.append(edge)
    labels: list[str] = ["0"] if zero else []
    cases: list[tuple[ir.BooleanValue, str]] = []
    if zero:
        cases.append((value <= 0, "0"))
    if not zero and lows:
        label = f"<{int(lows[0])}"
        labels.append(label)
        cases.append((value < lows[0], label))
    for low, high in zip(lows, [*lows[1:], None], strict=True):
        if high is None:
            label = f"{int(low)}+"
        elif high - low == 1:
            label = f"{int(low)}"
        else:
            label = f"{int(low)}-{int(high) - 1}"
        labels.append(label)
        cases.append(((value < high) if high is not None else value.notnull(), label))
    return labels, ibis.cases(*cases, else_=UNKNOWN).fill_null(UNKNOWN)


__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "MIN_FEATURES",
    "NOMINAL",
    "POWER_LEVELS",
    "UNKNOWN",
    "ValueFeatures",
    "value_features",
]
