"""Demographics with imputation (SPEC item 2): age, age band and city tier, each with its source.

The imputation chains of the JD "十大靶群" note, plus what other shops hold:

- **age**: real-name age (``users.real_name_age``) → age at the as-of date from
  ``users.birth_date`` → declared age (``users.age``) → a declared band alone
  (``users.age_band``, as JData gives: band, no age) → the profile model's age
  (``users.profile_age``, *imputed*) → the population's mode band (*imputed*,
  band only). Only the last two are imputed; the rest are facts about the user.
- **city tier**: tier of the real-name city (``users.real_name_city``) → the
  user's declared tier (``users.city_tier``) → tier of the declared city
  (``users.city``) → tier of the most frequent shipping city over the user's valid
  orders (*imputed*) → missing.

City names become tiers through a lookup learned from the data's own
(city, tier) pairs, falling back on a bundled list of China's largest cities.

Every input column is optional (a workspace's entirely-null columns are dropped
before a build): an absent column is a source that never answers. Everything is
one Ibis expression; no engine is touched. ``docs/standard-demographics.md``
gives the exact definitions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from importlib import resources
from typing import Any

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError
from huaxiang.segment.rfm import valid_orders

#: The age bands of ``users.age_band`` (docs/data-model.md), youngest first.
AGE_BANDS: tuple[str, ...] = ("0-15", "16-25", "26-35", "36-45", "46-55", "56+")
#: Upper age (inclusive) of each band but the last.
AGE_BAND_UPPER: tuple[int, ...] = (15, 25, 35, 45, 55)
#: Ages outside this range are treated as missing (a typo, a birth date after the as-of date).
AGE_RANGE = (0, 120)

#: Where an age came from, in the order the chain tries them.
AGE_SOURCES: tuple[str, ...] = (
    "real_name",
    "birth_date",
    "declared",
    "declared_band",
    "profile",
    "mode_band",
)
IMPUTED_AGE_SOURCES: frozenset[str] = frozenset({"profile", "mode_band"})

#: Where a city tier came from, in the order the chain tries them.
CITY_TIER_SOURCES: tuple[str, ...] = ("real_name_city", "declared_tier", "declared_city", "ship_city")
IMPUTED_CITY_TIER_SOURCES: frozenset[str] = frozenset({"ship_city"})
CITY_TIERS = range(1, 7)

#: Probability at or above which a user is taken to have a child (有孩子概率较高).
HIGH_CHILD_PROBABILITY = 0.5

#: Profile columns passed through unchanged (null when the workspace lacks them).
PASSTHROUGH: dict[str, str] = {
    "gender": "string",
    "marital_status": "string",
    "education": "string",
    "member_level": "int64",
}

REFERENCE_FILE = "reference/city_tiers.csv"
"""Bundled city → tier list inside ``huaxiang.templates`` (一线 = 1, 新一线 = 2, 二线 = 3)."""


# ---------------------------------------------------------------------------- reference and lookup


def reference_city_tiers() -> dict[str, int]:
    """The bundled city → tier list (第一财经·新一线城市研究所 2023: 一线 1, 新一线 2, 二线 3)."""
    text = resources.files("huaxiang.templates").joinpath(REFERENCE_FILE).read_text(encoding="utf-8")
    return {row["city"]: int(row["tier"]) for row in csv.DictReader(io.StringIO(text))}


def check_city_tiers(city_tiers: Any, origin: str = "demographics") -> dict[str, int]:
    """Validate a ``{city: tier}`` mapping given as a parameter; tiers are whole numbers 1-6."""
    if city_tiers is None:
        return {}
    if not isinstance(city_tiers, Mapping):
        raise ConfigError(
            f"{origin}: city_tiers must be a mapping of city name to tier, e.g. {{北京: 1, 曹县: 6}}; "
            f"got {type(city_tiers).__name__}."
        )
    checked: dict[str, int] = {}
    for city, tier in city_tiers.items():
        if not isinstance(city, str) or not city.strip():
            raise ConfigError(f"{origin}: city_tiers: city names are non-empty text, got {city!r}.")
        if isinstance(tier, bool) or not isinstance(tier, int) or tier not in CITY_TIERS:
            raise ConfigError(
                f"{origin}: city_tiers[{city!r}]: a tier is a whole number from 1 to 6, got {tier!r}."
            )
        checked[_normalise_city(city)] = tier
    return checked


def _normalise_city(name: str) -> str:
    """The key a city is looked up by: trimmed, without a trailing 市 (北京市 = 北京)."""
    name = name.strip()
    return name[:-1] if name.endswith("市") and len(name) > 2 else name


def city_key(city: ir.StringValue) -> ir.StringValue:
    """:func:`_normalise_city` as an Ibis expression (empty text becomes NULL)."""
    trimmed = city.strip()
    key = ibis.ifelse(
        trimmed.endswith("市") & (trimmed.length() > 2), trimmed.left(trimmed.length() - 1), trimmed
    )
    return ibis.ifelse(key == "", ibis.null("string"), key)


def _valid_tier(tier: ir.Value) -> ir.IntegerValue:
    tier = tier.cast("int64")
    return ibis.ifelse(tier.between(1, 6), tier, ibis.null("int64"))


def city_tier_lookup(
    users: ir.Table,
    orders: ir.Table | None,
    city_tiers: Mapping[str, int] | None = None,
    reference: Mapping[str, int] | None = None,
) -> ir.Table:
    """City → tier: ``city`` (normalised key), ``tier``, ``origin`` (``param``, ``data``, ``reference``).

    Priority: the ``city_tiers`` parameter, then the data's own pairs
    (``users.city`` + ``users.city_tier`` and ``orders.ship_city`` +
    ``orders.ship_city_tier``: each city takes its most frequent tier, a tie going
    to the smaller tier number), then ``reference`` (the bundled list by default).
    """
    pairs: list[ir.Table] = []
    if {"city", "city_tier"} <= set(users.columns):
        pairs.append(users.select(city=city_key(users.city), tier=_valid_tier(users.city_tier)))
    if orders is not None and {"ship_city", "ship_city_tier"} <= set(orders.columns):
        pairs.append(orders.select(city=city_key(orders.ship_city), tier=_valid_tier(orders.ship_city_tier)))
    schema = ibis.schema({"city": "string", "tier": "int64"})

    def constant(mapping: Mapping[str, int], origin: str) -> ir.Table:
        rows = {"city": list(mapping), "tier": list(mapping.values())}
        table = ibis.memtable(rows, schema=schema)
        return table.mutate(origin=ibis.literal(origin))

    lookup = constant(city_tiers or {}, "param")
    if pairs:
        seen = pairs[0]
        for more in pairs[1:]:
            seen = seen.union(more, distinct=False)
        seen = seen.filter(seen.city.notnull() & seen.tier.notnull())
        counts = seen.group_by(["city", "tier"]).aggregate(pairs=seen.count())
        rank = ibis.row_number().over(
            ibis.window(group_by=counts.city, order_by=[ibis.desc(counts.pairs), counts.tier])
        )
        learned = counts.mutate(rank=rank).filter(lambda t: t.rank == 0)
        learned = learned.select("city", "tier", origin=ibis.literal("data"))
        lookup = lookup.union(learned.anti_join(lookup, "city"), distinct=False)
    bundled = reference_city_tiers() if reference is None else dict(reference)
    if bundled:
        fallback = constant({_normalise_city(c): t for c, t in bundled.items()}, "reference")
        lookup = lookup.union(fallback.anti_join(lookup, "city"), distinct=False)
    return lookup


# ---------------------------------------------------------------------------- age


def age_band_of(age: ir.IntegerValue) -> ir.StringValue:
    """The band of an age: ``0-15`` (≤ 15), ``16-25`` ... ``46-55``, ``56+``; NULL stays NULL."""
    branches = [(age <= upper, band) for upper, band in zip(AGE_BAND_UPPER, AGE_BANDS, strict=False)]
    return ibis.cases(*branches, (age.notnull(), AGE_BANDS[-1]), else_=ibis.null("string"))


def age_at(birth_date: ir.Value, as_of: dt.date) -> ir.IntegerValue:
    """Completed years at ``as_of`` (a 29 February birthday falls on 1 March in other years)."""
    born = birth_date.cast("date")
    years = ibis.literal(as_of.year) - born.year()
    before_birthday = (born.month() > as_of.month) | (
        (born.month() == as_of.month) & (born.day() > as_of.day)
    )
    return (years - before_birthday.cast("int64")).cast("int64")


def _valid_age(age: ir.Value) -> ir.IntegerValue:
    age = age.cast("int64")
    return ibis.ifelse(age.between(*AGE_RANGE), age, ibis.null("int64"))


def _column(table: ir.Table, name: str, dtype: str) -> ir.Value:
    """``table[name]``, or a NULL of ``dtype`` when the table lacks the column."""
    return table[name] if name in table.columns else ibis.null(dtype)


# ---------------------------------------------------------------------------- shipping


def shipping_city_tier(orders: ir.Table, lookup: ir.Table) -> ir.Table | None:
    """``user_id``, ``ship_city_tier``: tier of the city most of the user's valid orders ship to.

    Each valid order (after-sale records excluded) has the tier ``orders.ship_city_tier``
    or, without one, the lookup's tier of ``orders.ship_city``; orders with no tier
    are ignored. Orders are counted per (city, tier) (an order without a city name
    counts for its tier alone). Ties: the place shipped to most recently, then the
    smaller tier number, then the city name. ``None`` when orders carry no shipping
    column at all.
    """
    columns = set(orders.columns)
    if not {"ship_city", "ship_city_tier"} & columns:
        return None
    valid = valid_orders(orders)
    city = city_key(valid.ship_city) if "ship_city" in columns else ibis.null("string")
    rows = valid.select(
        "user_id", "order_time", city=city, own_tier=_valid_tier(_column(valid, "ship_city_tier", "int64"))
    )
    looked_up = lookup.select(lookup_city=lookup.city, lookup_tier=lookup.tier)
    rows = rows.left_join(looked_up, rows.city == looked_up.lookup_city).select(
        "user_id", "order_time", "city", tier=ibis.coalesce(rows.own_tier, looked_up.lookup_tier)
    )
    rows = rows.filter(rows.tier.notnull())
    places = rows.group_by(["user_id", "city", "tier"]).aggregate(
        orders=rows.count(), last_order_time=rows.order_time.max()
    )
    rank = ibis.row_number().over(
        ibis.window(
            group_by=places.user_id,
            order_by=[
                ibis.desc(places.orders),
                ibis.desc(places.last_order_time),
                places.tier,
                places.city.fill_null(""),
            ],
        )
    )
    top = places.mutate(rank=rank).filter(lambda t: t.rank == 0)
    return top.select("user_id", ship_city_tier=top.tier)


# ---------------------------------------------------------------------------- the table


def demographics_table(
    users: ir.Table,
    orders: ir.Table | None,
    as_of: dt.date,
    *,
    city_tiers: Mapping[str, int] | None = None,
    reference: Mapping[str, int] | None = None,
) -> ir.Table:
    """Age, age band, city tier with their sources, and the profile columns rules read.

    Parameters
    ----------
    users
        Canonical users table; every column but ``user_id`` is optional.
    orders
        Canonical orders table (``user_id``, ``order_time``, optional ``ship_city``,
        ``ship_city_tier``, ``is_after_sale``), or ``None`` when the workspace has none.
    as_of
        Snapshot date: ``birth_date`` gives the age in completed years on that day.
    city_tiers
        Extra ``{city: tier}`` pairs that override the data and the bundled list.
    reference
        The fallback ``{city: tier}`` list; the bundled one by default.

    Returns
    -------
    ibis.Table
        One row per user: ``age`` (int64), ``age_band``, ``age_imputed``,
        ``age_source``, ``city_tier`` (int64), ``city_tier_imputed``,
        ``city_tier_source``, ``gender``, ``marital_status``, ``education``,
        ``member_level``, ``child_probability`` (float64 in [0, 1]) and
        ``has_grade_stage`` (boolean). A value the data cannot give is NULL; an
        imputed flag is false when there is no value.
    """
    overrides = check_city_tiers(city_tiers)
    base = users.select(
        "user_id",
        real_name_age=_valid_age(_column(users, "real_name_age", "int64")),
        birth_age=(
            _valid_age(age_at(users.birth_date, as_of))
            if "birth_date" in users.columns
            else ibis.null("int64")
        ),
        declared_age=_valid_age(_column(users, "age", "int64")),
        profile_age=_valid_age(_column(users, "profile_age", "int64")),
        declared_band=_declared_band(users),
    )
    source = ibis.cases(
        (base.real_name_age.notnull(), "real_name"),
        (base.birth_age.notnull(), "birth_date"),
        (base.declared_age.notnull(), "declared"),
        (base.declared_band.notnull(), "declared_band"),
        (base.profile_age.notnull(), "profile"),
        else_=ibis.null("string"),
    )
    known_age = ibis.coalesce(base.real_name_age, base.birth_age, base.declared_age)
    base = base.mutate(
        age_source=source,
        known_band=ibis.coalesce(age_band_of(known_age), base.declared_band),
        age=ibis.coalesce(known_age, ibis.ifelse(source == "profile", base.profile_age, ibis.null("int64"))),
    )
    mode = mode_band(base.known_band)
    filled = ibis.ifelse(base.age_source.isnull() & mode.notnull(), "mode_band", base.age_source)
    base = base.mutate(age_source=filled)
    base = base.mutate(
        age_band=ibis.coalesce(
            age_band_of(base.age),
            base.declared_band,
            ibis.ifelse(base.age_source == "mode_band", mode, ibis.null("string")),
        ),
        age_imputed=base.age_source.isin(sorted(IMPUTED_AGE_SOURCES)).fill_null(False),
    )

    lookup = city_tier_lookup(users, orders, overrides, reference)
    cities = users.select(
        "user_id",
        real_name_city=city_key(_column(users, "real_name_city", "string")),
        declared_city=city_key(_column(users, "city", "string")),
        declared_tier=_valid_tier(_column(users, "city_tier", "int64")),
    )
    for name in ("real_name_city", "declared_city"):
        tiers = lookup.select(**{f"{name}_key": lookup.city, f"{name}_tier": lookup.tier})
        cities = cities.left_join(tiers, cities[name] == tiers[f"{name}_key"]).drop(f"{name}_key")
    shipping = shipping_city_tier(orders, lookup) if orders is not None else None
    if shipping is not None:
        cities = cities.left_join(shipping, "user_id").drop("user_id_right")
    else:
        cities = cities.mutate(ship_city_tier=ibis.null("int64"))
    city_source = ibis.cases(
        (cities.real_name_city_tier.notnull(), "real_name_city"),
        (cities.declared_tier.notnull(), "declared_tier"),
        (cities.declared_city_tier.notnull(), "declared_city"),
        (cities.ship_city_tier.notnull(), "ship_city"),
        else_=ibis.null("string"),
    )
    cities = cities.select(
        "user_id",
        city_tier=ibis.coalesce(
            cities.real_name_city_tier, cities.declared_tier, cities.declared_city_tier, cities.ship_city_tier
        ).cast("int64"),
        city_tier_source=city_source,
        city_tier_imputed=city_source.isin(sorted(IMPUTED_CITY_TIER_SOURCES)).fill_null(False),
    )

    profile = users.select(
        "user_id",
        **{name: _column(users, name, dtype).cast(dtype) for name, dtype in PASSTHROUGH.items()},
        child_probability=_child_probability(users),
        has_grade_stage=_has_grade_stage(users),
    )
    ages = base.select("user_id", "age", "age_band", "age_imputed", "age_source")
    joined = ages.inner_join(cities, "user_id").inner_join(profile, "user_id")
    return joined.select(
        "user_id",
        "age",
        "age_band",
        "age_imputed",
        "age_source",
        "city_tier",
        "city_tier_imputed",
        "city_tier_source",
        *PASSTHROUGH,
        "child_probability",
        "has_grade_stage",
    )


def mode_band(known_band: ir.StringValue) -> ir.StringScalar:
    """The most frequent of the known (not imputed) bands; a tie goes to the younger band.

    NULL when no user has a known band.
    """
    table = known_band.name("band").as_table()
    table = table.filter(table.band.notnull())
    counts = table.group_by("band").aggregate(users=table.count())
    order = ibis.cases(*[(counts.band == band, index) for index, band in enumerate(AGE_BANDS)])
    top = counts.order_by([ibis.desc(counts.users), order]).limit(1)
    return top.band.as_scalar()


def _declared_band(users: ir.Table) -> ir.StringValue:
    if "age_band" not in users.columns:
        return ibis.null("string")
    band = users.age_band.cast("string").strip()
    return ibis.ifelse(band.isin(list(AGE_BANDS)), band, ibis.null("string"))


def _child_probability(users: ir.Table) -> ir.FloatingValue:
    if "child_probability" not in users.columns:
        return ibis.null("float64")
    value = users.child_probability.cast("float64")
    return ibis.ifelse(value.between(0, 1), value, ibis.null("float64"))


def _has_grade_stage(users: ir.Table) -> ir.BooleanValue:
    if "grade_stage" not in users.columns:
        return ibis.literal(False)
    stage = users.grade_stage.cast("string").strip()
    return (stage.notnull() & (stage != "")).fill_null(False)


# ---------------------------------------------------------------------------- manifest details


def demographics_details(table: ir.Table) -> dict[str, ir.Table]:
    """One-row tables for the manifest: the mode band and users per age / city-tier source.

    ``age_imputation``: ``mode_band`` (the mode of the known, not imputed bands, as
    :func:`mode_band`; NULL when no band is known) and ``users_<source>`` for each
    age source plus ``users_missing``; ``city_tier_imputation``: ``users_<source>`` for each
    city-tier source plus ``users_missing``.
    """

    def per_source(column: ir.StringValue, sources: tuple[str, ...]) -> dict[str, ir.Value]:
        counts: dict[str, ir.Value] = {
            f"users_{source}": (column == source).cast("int64").sum().fill_null(0) for source in sources
        }
        counts["users_missing"] = column.isnull().cast("int64").sum().fill_null(0)
        return counts

    known = table.filter(~table.age_source.isin(sorted(IMPUTED_AGE_SOURCES))).age_band
    age = table.aggregate(**per_source(table.age_source, AGE_SOURCES))
    age = age.mutate(mode_band=mode_band(known)).select("mode_band", *age.columns)
    city = table.aggregate(**per_source(table.city_tier_source, CITY_TIER_SOURCES))
    return {"age_imputation": age, "city_tier_imputation": city}


__all__ = [
    "AGE_BANDS",
    "AGE_SOURCES",
    "CITY_TIER_SOURCES",
    "HIGH_CHILD_PROBABILITY",
    "IMPUTED_AGE_SOURCES",
    "IMPUTED_CITY_TIER_SOURCES",
    "age_at",
    "age_band_of",
    "check_city_tiers",
    "city_key",
    "city_tier_lookup",
    "demographics_details",
    "demographics_table",
    "mode_band",
    "reference_city_tiers",
    "shipping_city_tier",
]
