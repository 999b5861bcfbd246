"""Users of one chunk: planted persona, lifecycle, demographics and behaviour rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from huaxiang.datasets.sample.arrow import (
    TRUTH_SCHEMA,
    date_array,
    int_array,
    list_array,
    pad_ids,
    string_codes,
    table_from_columns,
    take_strings,
    timestamp_array,
)
from huaxiang.datasets.sample.calendar import MICROS_PER_DAY, MICROS_PER_SECOND, ShopCalendar
from huaxiang.datasets.sample.catalog import N_TOP
from huaxiang.datasets.sample.personas import (
    ACTIVE,
    BIG_SPENDER_ORDER_RATE,
    CHILD_AFFINITY,
    CHURN_GAP_DAYS,
    CHURNED,
    HIGH_POTENTIAL,
    LIFECYCLE_SLUGS,
    LIFECYCLES,
    NEW,
    OUTING_AFFINITY,
    PERSONA_SLUGS,
    PERSONAS,
    PET_AFFINITY,
    POTENTIAL,
    SILENT,
    SILENT_GAP_DAYS,
)
from huaxiang.datasets.sample.reference import (
    ACQUISITION_CHANNELS,
    CITIES,
    GRADE_STAGES,
    TOP_CATEGORIES,
)
from huaxiang.datasets.sample.sampling import GroupSampler, choice, rowwise_choice
from huaxiang.model.schema import EDUCATION, GENDERS, MARITAL

#: Share of a category's natural rhythm an average buyer brings to this shop.
ORDER_SCALE = 0.2
#: Spread of the per-user stretch of a category's purchase cycle (lognormal sigma).
STRETCH_SIGMA = 0.5
MAX_PARTICIPATION = 0.95
#: Cap of how much faster than the category rhythm a keen buyer repeats.
MAX_INTENSITY = 2.0
#: Browsing sessions per active day of an average user.
SESSION_SCALE = 0.011
#: Spread of the heavy-tailed activity multiplier (lognormal sigma, mean 1).
ACTIVITY_SIGMA = 0.9
_TOP_SLUGS = tuple(top.slug for top in TOP_CATEGORIES)
_TOP_NAMES = pa.array([top.name for top in TOP_CATEGORIES], pa.string())
_CITY_NAMES = pa.array([c[0] for c in CITIES], pa.string())
CITY_TIERS = np.array([c[1] for c in CITIES], dtype=np.int64)
_CITY_WEIGHTS = np.array([c[2] for c in CITIES])
CITY_BY_TIER = GroupSampler(
    [np.flatnonzero(CITY_TIERS == tier) for tier in range(1, 7)],
    [_CITY_WEIGHTS[CITY_TIERS == tier] for tier in range(1, 7)],
)
CITY_BY_POPULATION = GroupSampler([np.arange(len(CITIES))], [_CITY_WEIGHTS])


def _multiplier(mapping: dict[str, float]) -> np.ndarray:
    return np.array([mapping.get(slug, 1.0) for slug in _TOP_SLUGS])


_PARTICIPATION = np.array([top.participation for top in TOP_CATEGORIES])
_CYCLE_DAYS = np.array([top.cycle_days for top in TOP_CATEGORIES], dtype=np.float64)
_BROWSE_FACTOR = np.array([top.browse_factor for top in TOP_CATEGORIES])
_PERSONA_AFFINITY = np.stack([p.affinity_vector() for p in PERSONAS])


@dataclass
class UserChunk:
    """Arrays describing the users of one chunk (index = position in the chunk)."""

    ids: pa.Array
    persona: np.ndarray
    lifecycle: np.ndarray
    true_age: np.ndarray
    true_city: np.ndarray
    register_us: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    #: Every activity of the user lies in [lower_us, upper_us].
    lower_us: np.ndarray
    upper_us: np.ndarray
    activity: np.ndarray
    outing_lover: np.ndarray
    promo_sensitive: np.ndarray
    big_spender: np.ndarray
    has_child: np.ndarray
    pet_owner: np.ndarray
    #: Expected orders per day, users x top categories (0 where the user never buys).
    buy_rate: np.ndarray
    #: Weights for picking one of the user's categories (buy rate, then interest).
    preference: np.ndarray
    #: Row-wise cumulative share of browsing per top category.
    browse_cumulative: np.ndarray
    session_rate: np.ndarray
    acquisition: np.ndarray
    #: Day activity stopped for silent and churned users (-1 otherwise).
    stopped_day: np.ndarray
    columns: dict[str, pa.Array]

    @property
    def size(self) -> int:
        """Number of users in the chunk."""
        return len(self.persona)

    @property
    def active_days(self) -> np.ndarray:
        """Days from first to last possible activity, inclusive."""
        return self.last_day - self.first_day + 1

    def fit_times(self, rng: np.random.Generator, user: np.ndarray, micros: np.ndarray) -> None:
        """Move times outside the user's activity bounds just inside them (in place).

        Times are redrawn near the bound rather than clipped, so no two actions
        share a timestamp by construction.
        """
        lower = self.lower_us[user]
        upper = self.upper_us[user]
        span = np.maximum(upper - lower, 1)
        early = micros < lower
        if early.any():
            reach = np.minimum(span[early], 3 * 3600 * MICROS_PER_SECOND)
            micros[early] = lower[early] + (rng.random(int(early.sum())) * reach).astype(np.int64)
        late = micros > upper
        if late.any():
            reach = np.minimum(span[late], 3600 * MICROS_PER_SECOND)
            micros[late] = upper[late] - (rng.random(int(late.sum())) * reach).astype(np.int64)


def draw_users(
    rng: np.random.Generator, calendar: ShopCalendar, first_number: int, n: int
) -> UserChunk:
    """Draw ``n`` users numbered from ``first_number`` (1-based, global)."""
    n_days = calendar.n_days
    persona = choice(rng, np.array([p.share for p in PERSONAS]), n).astype(np.int8)
    lifecycle = choice(rng, np.array([s.share for s in LIFECYCLES]), n).astype(np.int8)
    # Big spenders are rarely lost: the shop keeps its best customers.
    lost = (persona == PERSONA_SLUGS.index("big_spender")) & np.isin(lifecycle, [SILENT, CHURNED])
    lifecycle[lost & (rng.random(n) < 0.7)] = ACTIVE

    first_day, last_day, register_day, stopped_day = _activity_windows(rng, lifecycle, n_days)
    register_us = (
        calendar.start_us + register_day * MICROS_PER_DAY + calendar.draw_time_of_day(rng, n)
    )
    lower_us = np.maximum(calendar.start_us, register_us + 60 * MICROS_PER_SECOND)
    upper_us = calendar.start_us + (last_day + 1) * MICROS_PER_DAY - 1

    age_low = np.array([p.age_range[0] for p in PERSONAS])[persona]
    age_high = np.array([p.age_range[1] for p in PERSONAS])[persona]
    true_age = rng.integers(age_low, age_high + 1)
    tier_weights = np.array([p.tier_weights for p in PERSONAS])[persona]
    tier = rowwise_choice(rng, tier_weights)  # 0-based
    true_city = CITY_BY_TIER.sample(rng, tier)

    def flag(attribute: str) -> np.ndarray:
        share = np.array([getattr(p, attribute) for p in PERSONAS])[persona]
        return rng.random(n) < share

    outing_lover = flag("outing_share")
    promo_sensitive = flag("promo_share")
    big_spender = flag("big_spender_share")
    pet_owner = flag("pet_share")
    child_a = np.array([p.child_beta[0] for p in PERSONAS])[persona]
    child_b = np.array([p.child_beta[1] for p in PERSONAS])[persona]
    child_probability = rng.beta(child_a, child_b)
    has_child = (rng.random(n) < child_probability) & (true_age >= 20) & (true_age < 50)

    activity = rng.lognormal(-(ACTIVITY_SIGMA**2) / 2, ACTIVITY_SIGMA, n)
    appetite = _PERSONA_AFFINITY[persona]
    appetite = appetite * np.where(has_child[:, None], _multiplier(CHILD_AFFINITY), 1.0)
    appetite *= np.where(pet_owner[:, None], _multiplier(PET_AFFINITY), 1.0)
    appetite *= np.where(outing_lover[:, None], _multiplier(OUTING_AFFINITY), 1.0)
    participation = np.minimum(_PARTICIPATION * appetite, MAX_PARTICIPATION)
    buys = rng.random((n, N_TOP)) < participation
    # A buyer repeats a category every cycle_days x stretch: the category sets the rhythm,
    # the user how much of it they bring to this shop.
    stretch = rng.lognormal(0.0, STRETCH_SIGMA, (n, N_TOP))
    intensity = np.minimum(np.sqrt(appetite), MAX_INTENSITY)
    order_rate = np.array([p.order_rate for p in PERSONAS])[persona] * activity**0.8
    order_rate *= np.where(big_spender, BIG_SPENDER_ORDER_RATE, 1.0)
    buy_rate = np.where(
        buys, ORDER_SCALE * order_rate[:, None] * intensity / (_CYCLE_DAYS * stretch), 0.0
    )
    interest = participation * rng.gamma(2.0, 0.5, (n, N_TOP)) * np.where(buys, 2.0, 1.0)
    browse = interest * _BROWSE_FACTOR + 0.01
    browse_cumulative = np.cumsum(browse, axis=1)
    browse_cumulative /= browse_cumulative[:, -1:]
    preference = buy_rate + 1e-9 * interest
    session_rate = (
        SESSION_SCALE * np.array([p.session_rate for p in PERSONAS])[persona] * activity**0.6
    )
    session_rate *= np.where(outing_lover, 1.3, 1.0)

    ids = pad_ids("U", np.arange(first_number, first_number + n), 8)
    columns, acquisition = _demographic_columns(
        rng, persona, tier, true_age, true_city, child_probability, interest
    )
    columns["user_id"] = ids
    columns["register_time"] = timestamp_array(register_us)
    return UserChunk(
        ids=ids, persona=persona, lifecycle=lifecycle, true_age=true_age, true_city=true_city,
        register_us=register_us, first_day=first_day, last_day=last_day, lower_us=lower_us,
        upper_us=upper_us, activity=activity, outing_lover=outing_lover,
        promo_sensitive=promo_sensitive, big_spender=big_spender, has_child=has_child,
        pet_owner=pet_owner, buy_rate=buy_rate, preference=preference,
        browse_cumulative=browse_cumulative,
        session_rate=session_rate, acquisition=acquisition, stopped_day=stopped_day,
        columns=columns,
    )


def _activity_windows(
    rng: np.random.Generator, lifecycle: np.ndarray, n_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First / last activity day, register day and the day activity stopped (-1 if it did not)."""
    n = len(lifecycle)
    last = np.full(n, n_days - 1, dtype=np.int64)
    silent_gap = rng.integers(SILENT_GAP_DAYS[0], SILENT_GAP_DAYS[1] + 1, n)
    churn_gap = rng.integers(CHURN_GAP_DAYS[0], min(CHURN_GAP_DAYS[1], n_days - 91) + 1, n)
    potential_gap = rng.integers(35, 151, n)
    last = np.where(lifecycle == SILENT, n_days - 1 - silent_gap, last)
    last = np.where(lifecycle == CHURNED, n_days - 1 - churn_gap, last)
    last = np.where(lifecycle == POTENTIAL, n_days - 1 - potential_gap, last)

    before_window = -rng.integers(1, 3 * 365, n)
    old_member = rng.random(n) < 0.55

    def within(low: np.ndarray | int, high: np.ndarray | int) -> np.ndarray:
        low_a = np.asarray(low) + np.zeros(n, dtype=np.int64)
        high_a = np.maximum(np.asarray(high) + np.zeros(n, dtype=np.int64), low_a)
        return low_a + (rng.random(n) * (high_a - low_a + 1)).astype(np.int64)

    register = np.where(old_member, before_window, within(0, last - 120))
    register = np.where(lifecycle == CHURNED, np.where(old_member, before_window,
                                                        within(0, last - 60)), register)
    register = np.where(lifecycle == NEW, within(n_days - 180, n_days - 20), register)
    recent_signup = rng.random(n) < 0.4
    register = np.where(
        lifecycle == HIGH_POTENTIAL,
        np.where(recent_signup, within(n_days - 30, n_days - 2), within(n_days - 400, n_days - 31)),
        register,
    )
    register = np.where(lifecycle == POTENTIAL, within(-700, last - 30), register)
    first = np.maximum(register, 0)
    stopped = np.where(np.isin(lifecycle, [SILENT, CHURNED]), last + 1, -1)
    return first, last, register, stopped


def _demographic_columns(
    rng: np.random.Generator,
    persona: np.ndarray,
    tier: np.ndarray,
    true_age: np.ndarray,
    true_city: np.ndarray,
    child_probability: np.ndarray,
    interest: np.ndarray,
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Profile columns as a shop would hold them (partly missing) and acquisition codes."""
    n = len(persona)
    female = rng.random(n) < np.array([p.female_share for p in PERSONAS])[persona]
    gender = np.where(female, GENDERS.index("female"), GENDERS.index("male"))
    gender = np.where(rng.random(n) < 0.02, GENDERS.index("unknown"), gender)

    # Real-name age for most, a model's guess for some, nothing for a few percent.
    age_source = rng.random(n)
    real_name_valid = age_source < 0.78
    profile_valid = ((age_source >= 0.78) & (age_source < 0.96)) | (
        real_name_valid & (rng.random(n) < 0.3)
    )
    profile_age = np.clip(true_age + np.round(rng.normal(0, 3, n)), 12, 90)

    city_known = rng.random(n) < 0.9
    real_name_known = rng.random(n) < 0.65
    migrant = rng.random(n) < 0.08
    hometown = CITY_BY_TIER.sample(rng, np.minimum(tier + 2, 5))
    real_name_city = np.where(migrant, hometown, true_city)

    education_weights = np.array([p.education_weights for p in PERSONAS])[persona]
    education = rowwise_choice(rng, education_weights)
    education = np.where(rng.random(n) < 0.05, EDUCATION.index("unknown"), education)

    married_probability = 1 / (1 + np.exp(-(true_age - 28) / 3.0))
    married_probability = np.where(child_probability > 0.6, 0.95, married_probability)
    marital = np.where(rng.random(n) < married_probability, MARITAL.index("married"),
                       MARITAL.index("single"))
    later = rng.random(n)
    marital = np.where((true_age >= 35) & (later < 0.05), MARITAL.index("divorced"), marital)
    marital = np.where((true_age >= 65) & (later > 0.8), MARITAL.index("widowed"), marital)
    marital = np.where(rng.random(n) < 0.05, MARITAL.index("unknown"), marital)

    acquisition = rowwise_choice(
        rng, np.array([p.acquisition_weights for p in PERSONAS])[persona]
    )
    student = persona == PERSONA_SLUGS.index("student")
    grade = np.select(
        [true_age <= 15, true_age <= 18, true_age <= 22], [0, 1, 2], default=3
    )
    grade = np.where(student, grade, -1)

    # Declared preferences: 1-3 of the user's favourite top categories, for about a third.
    declared = rng.random(n) < 0.35
    lengths = np.where(declared, rng.integers(1, 4, n), 0)
    favourites = np.argsort(-interest, axis=1, kind="stable")[:, :3]
    picked = favourites[np.arange(3)[None, :] < lengths[:, None]]
    columns = {
        "gender": string_codes(GENDERS, gender),
        "real_name_age": int_array(true_age, real_name_valid),
        "profile_age": int_array(profile_age, profile_valid),
        "real_name_city": take_strings(_CITY_NAMES, np.where(real_name_known, real_name_city, -1)),
        "city": take_strings(_CITY_NAMES, np.where(city_known, true_city, -1)),
        "city_tier": int_array(CITY_TIERS[true_city], city_known),
        "country": pa.array(np.full(n, "CN"), pa.string()),
        "education": string_codes(EDUCATION, education),
        "marital_status": string_codes(MARITAL, marital),
        "child_probability": pa.array(np.round(child_probability, 3), pa.float64()),
        "acquisition_channel": string_codes(ACQUISITION_CHANNELS, acquisition),
        "grade_stage": string_codes(GRADE_STAGES, grade),
        "declared_preferences": list_array(lengths, _TOP_NAMES.take(pa.array(picked)), declared),
    }
    return columns, acquisition


def users_table(
    rng: np.random.Generator, users: UserChunk, spend_cents: np.ndarray
) -> pa.Table:
    """The ``users`` table; member score and level follow the user's valid spend."""
    n = users.size
    spend_yuan = spend_cents / 100.0
    score = 1500 + 2600 * np.log1p(spend_yuan / 200.0) + rng.normal(0, 900, n)
    score = np.clip(np.round(score), 0, 20000).astype(np.int64)
    level = 1 + np.searchsorted(np.array([3000, 6000, 9000, 13000]), score, side="right")
    columns = dict(users.columns)
    columns["member_score"] = int_array(score)
    columns["member_level"] = int_array(level)
    return table_from_columns("users", columns)


def truth_table(
    users: UserChunk,
    start_epoch_day: int,
    campaign_variant: pa.Array,
    uplift_order: np.ndarray,
) -> pa.Table:
    """One row per user with the planted ground truth."""
    epoch_day = start_epoch_day + users.stopped_day
    persona_zh = tuple(p.name_zh for p in PERSONAS)
    return pa.Table.from_arrays(
        [
            users.ids,
            string_codes(PERSONA_SLUGS, users.persona),
            string_codes(persona_zh, users.persona),
            string_codes(LIFECYCLE_SLUGS, users.lifecycle),
            date_array(epoch_day, users.lifecycle == CHURNED),
            date_array(epoch_day, users.lifecycle == SILENT),
            pa.array(users.outing_lover),
            pa.array(users.promo_sensitive),
            pa.array(users.big_spender),
            pa.array(users.has_child),
            pa.array(users.pet_owner),
            int_array(users.true_age),
            take_strings(_CITY_NAMES, users.true_city),
            int_array(CITY_TIERS[users.true_city]),
            pa.array(np.round(users.activity, 4)),
            campaign_variant,
            pa.array(uplift_order),
        ],
        schema=TRUTH_SCHEMA,
    )
