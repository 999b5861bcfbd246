"""Planted personas and lifecycles: who the sample users are and how they behave."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from huaxiang.datasets.sample.reference import TOP_CATEGORIES

_TOP_SLUGS = tuple(top.slug for top in TOP_CATEGORIES)


@dataclass(frozen=True)
class Persona:
    """A planted kind of user: demographics, appetite per category and activity level."""

    slug: str
    name_zh: str
    description: str
    share: float
    age_range: tuple[int, int]
    #: Relative weight of city tiers 1..6.
    tier_weights: tuple[float, float, float, float, float, float]
    female_share: float
    #: Weights over schema.EDUCATION minus "unknown" (primary .. doctor).
    education_weights: tuple[float, float, float, float, float, float]
    #: Beta(a, b) of the probability of having a child.
    child_beta: tuple[float, float]
    #: Multipliers of the default order and browsing rates.
    order_rate: float
    session_rate: float
    #: Top-category slug -> multiplier of its participation (and, damped, of its rate).
    affinity: dict[str, float] = field(default_factory=dict)
    outing_share: float = 0.03
    promo_share: float = 0.08
    big_spender_share: float = 0.02
    pet_share: float = 0.12
    #: Weights over reference.ACQUISITION_CHANNELS (plus, E卡, organic, ad, referral).
    acquisition_weights: tuple[float, float, float, float, float] = (0.15, 0.1, 0.4, 0.2, 0.15)

    def affinity_vector(self) -> np.ndarray:
        """Multiplier per top category, in ``TOP_CATEGORIES`` order."""
        return np.array([self.affinity.get(slug, 1.0) for slug in _TOP_SLUGS])


_URBAN = (4.0, 5.0, 1.0, 0.3, 0.1, 0.05)
_TOWN = (0.1, 0.4, 3.0, 3.0, 2.5, 2.0)
_ANY = (1.8, 2.5, 2.0, 1.5, 1.2, 1.0)

PERSONAS: tuple[Persona, ...] = (
    Persona(
        slug="urban_professional", name_zh="都市白领", share=0.18,
        description="Tier 1-2 office workers, 24-40: beauty, fashion, local life, fresh food.",
        age_range=(24, 40), tier_weights=_URBAN, female_share=0.55,
        education_weights=(0, 0.02, 0.1, 0.6, 0.22, 0.06), child_beta=(2, 6),
        order_rate=1.3, session_rate=1.2,
        affinity={"beauty": 2.0, "apparel": 1.5, "local_life": 2.5, "fresh": 1.5,
                  "digital": 1.3, "personal_care_appliance": 1.5},
        outing_share=0.06, big_spender_share=0.08,
        acquisition_weights=(0.3, 0.1, 0.3, 0.15, 0.15),
    ),
    Persona(
        slug="urban_family", name_zh="都市家庭", share=0.08,
        description="Tier 1-2 parents, 28-45: groceries, baby and kids.",
        age_range=(28, 45), tier_weights=_URBAN, female_share=0.7,
        education_weights=(0, 0.05, 0.15, 0.55, 0.2, 0.05), child_beta=(8, 2),
        order_rate=1.4, session_rate=1.0,
        affinity={"fresh": 2.0, "grain_oil": 1.5, "home_cleaning": 1.5, "appliance": 1.5,
                  "books": 1.2},
        outing_share=0.06, big_spender_share=0.05,
    ),
    Persona(
        slug="small_town_family", name_zh="小镇家庭", share=0.14,
        description="Tier 3-6 parents, 24-42: baby products (奶粉, 纸尿裤), grain, cleaning.",
        age_range=(24, 42), tier_weights=_TOWN, female_share=0.75,
        education_weights=(0.05, 0.4, 0.3, 0.22, 0.03, 0), child_beta=(9, 2),
        order_rate=1.1, session_rate=0.9,
        affinity={"grain_oil": 1.8, "home_cleaning": 1.8, "fresh": 0.6, "beauty": 0.6,
                  "local_life": 0.4},
        promo_share=0.15, acquisition_weights=(0.05, 0.1, 0.35, 0.3, 0.2),
    ),
    Persona(
        slug="small_town_youth", name_zh="小镇青年", share=0.12,
        description="Tier 3-6, 18-35: clothes, snacks and phones.",
        age_range=(18, 35), tier_weights=_TOWN, female_share=0.45,
        education_weights=(0.03, 0.35, 0.35, 0.25, 0.02, 0), child_beta=(2, 8),
        order_rate=0.9, session_rate=1.1,
        affinity={"apparel": 1.5, "snacks": 1.5, "digital": 1.2, "local_life": 0.6},
        promo_share=0.12,
    ),
    Persona(
        slug="student", name_zh="学生", share=0.08,
        description="15-24 with a school grade stage: books, snacks, low spend.",
        age_range=(15, 24), tier_weights=_ANY, female_share=0.5,
        education_weights=(0, 0.45, 0.15, 0.35, 0.05, 0), child_beta=(1, 30),
        order_rate=0.6, session_rate=1.3,
        affinity={"books": 4.0, "snacks": 2.0, "apparel": 1.5, "digital": 1.2, "fresh": 0.2,
                  "grain_oil": 0.1, "home_cleaning": 0.3, "appliance": 0.1, "liquor": 0.05,
                  "auto": 0.0},
        promo_share=0.15, big_spender_share=0.0, pet_share=0.03,
        acquisition_weights=(0.02, 0.08, 0.4, 0.2, 0.3),
    ),
    Persona(
        slug="silver", name_zh="银发", share=0.08,
        description="56+: health, grain and fresh food, few events.",
        age_range=(56, 78), tier_weights=_ANY, female_share=0.5,
        education_weights=(0.25, 0.45, 0.15, 0.13, 0.02, 0), child_beta=(1.5, 6),
        order_rate=0.8, session_rate=0.5,
        affinity={"health": 4.0, "grain_oil": 1.5, "fresh": 1.8, "home_living": 1.2,
                  "digital": 0.3, "beauty": 0.3, "apparel": 0.5, "snacks": 0.5, "sports": 0.5},
        outing_share=0.02, acquisition_weights=(0.05, 0.25, 0.4, 0.1, 0.2),
    ),
    Persona(
        slug="digital_geek", name_zh="数码极客", share=0.06,
        description="Mostly men, 18-40: browse and buy 3C a lot.",
        age_range=(18, 40), tier_weights=_ANY, female_share=0.15,
        education_weights=(0, 0.05, 0.2, 0.55, 0.15, 0.05), child_beta=(2, 6),
        order_rate=1.1, session_rate=2.0,
        affinity={"digital": 6.0, "personal_care_appliance": 2.0, "appliance": 1.5,
                  "auto": 1.5, "beauty": 0.3},
        big_spender_share=0.1,
    ),
    Persona(
        slug="outing_lover", name_zh="户外爱好者", share=0.06,
        description="Camping, barbecue, picnics: outing products, peaks in spring and autumn.",
        age_range=(22, 45), tier_weights=_ANY, female_share=0.45,
        education_weights=(0, 0.1, 0.25, 0.5, 0.12, 0.03), child_beta=(2, 5),
        order_rate=1.0, session_rate=1.5,
        affinity={"sports": 3.0, "local_life": 1.5, "auto": 1.5},
        outing_share=1.0,
    ),
    Persona(
        slug="promo_hunter", name_zh="促销敏感", share=0.10,
        description="Come for 618 and 双11, use coupons.",
        age_range=(22, 60), tier_weights=_ANY, female_share=0.65,
        education_weights=(0.03, 0.3, 0.3, 0.32, 0.05, 0), child_beta=(3, 4),
        order_rate=1.0, session_rate=0.9,
        affinity={"home_cleaning": 1.5, "grain_oil": 1.5, "snacks": 1.3, "beauty": 1.3},
        promo_share=1.0, acquisition_weights=(0.05, 0.2, 0.2, 0.4, 0.15),
    ),
    Persona(
        slug="big_spender", name_zh="高价值", share=0.04,
        description="High spend, premium brands (戴森, 3C, 家电), high member score.",
        age_range=(28, 55), tier_weights=(3.0, 3.0, 1.5, 0.5, 0.2, 0.1), female_share=0.5,
        education_weights=(0, 0.02, 0.08, 0.5, 0.3, 0.1), child_beta=(3, 4),
        order_rate=1.5, session_rate=1.2,
        affinity={"appliance": 2.0, "digital": 2.0, "beauty": 2.0, "liquor": 2.0,
                  "personal_care_appliance": 2.5},
        big_spender_share=1.0, promo_share=0.02,
        acquisition_weights=(0.6, 0.1, 0.2, 0.05, 0.05),
    ),
    Persona(
        slug="mainstream", name_zh="大众用户", share=0.06,
        description="Everyone else: average on every trait.",
        age_range=(18, 65), tier_weights=_ANY, female_share=0.5,
        education_weights=(0.05, 0.3, 0.25, 0.3, 0.08, 0.02), child_beta=(2, 4),
        order_rate=1.0, session_rate=1.0,
    ),
)

PERSONA_SLUGS = tuple(p.slug for p in PERSONAS)


@dataclass(frozen=True)
class Lifecycle:
    """A planted lifecycle stage as of the end date, with how activity is laid out."""

    slug: str
    name_zh: str
    share: float
    description: str


LIFECYCLES: tuple[Lifecycle, ...] = (
    Lifecycle("potential", "潜客", 0.07, "Registered, never ordered; last seen 35-156 days "
              "before the end date."),
    Lifecycle("high_potential", "高潜", 0.04, "Never ordered; signed up or searched / viewed / "
              "favorited / carted in the last 30 days."),
    Lifecycle("new", "新客", 0.08, "Exactly one order, registered in the last 20-180 days, active "
              "until the end date."),
    Lifecycle("active", "老客", 0.56, "Two or more orders, one in the last 60 days, a visit in the "
              "last 14 days."),
    Lifecycle("silent", "沉默客", 0.10, "Two or more orders, last seen in the week before "
              "truth.silent_since, then no activity for the last 60-150 days."),
    Lifecycle("churned", "流失客", 0.15, "At least one order, last seen in the week before "
              "truth.churn_date, then no activity (200-600 days before the end date)."),
)
LIFECYCLE_SLUGS = tuple(stage.slug for stage in LIFECYCLES)
POTENTIAL, HIGH_POTENTIAL, NEW, ACTIVE, SILENT, CHURNED = range(len(LIFECYCLES))

#: Days of inactivity before the end date for silent and churned users.
SILENT_GAP_DAYS = (60, 150)
CHURN_GAP_DAYS = (200, 600)
#: Thresholds that recover the planted stages exactly (documented in planted.json).
RECOMMENDED_THRESHOLDS = {"high_potential_days": 30, "silent_days": 45, "churn_days": 180}
RECOVERY_RULE = (
    "with d = days from the date of the last activity (event or order) to the end date and "
    "n = orders: n = 0 -> high_potential if d <= 30 else potential; d >= 180 -> churned; "
    "d >= 45 -> silent; n = 1 -> new; else active"
)

#: Traits that multiply category affinities, per top-category slug.
CHILD_AFFINITY = {"mother_baby": 15.0, "toys": 10.0, "books": 1.5}
PET_AFFINITY = {"pet": 20.0}
OUTING_AFFINITY = {"outdoor": 8.0, "snacks": 1.3, "liquor": 1.3, "sports": 1.5}
BIG_SPENDER_ORDER_RATE = 1.5
