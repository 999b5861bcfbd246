"""The planted campaign: a pre-双11 coupon push with a random treatment / control split."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from huaxiang.datasets.sample.arrow import (
    string_codes,
    table_from_columns,
    timestamp_array,
)
from huaxiang.datasets.sample.calendar import MICROS_PER_DAY, MICROS_PER_SECOND, ShopCalendar
from huaxiang.datasets.sample.personas import ACTIVE, HIGH_POTENTIAL, NEW
from huaxiang.datasets.sample.reference import TOUCH_CHANNELS
from huaxiang.datasets.sample.users import UserChunk

VARIANTS = ("treatment", "control")
TREATMENT, CONTROL = 0, 1
#: Days before the end date the touch is sent, and how long its effect lasts.
TOUCH_DAYS_BEFORE_END = 14
CONVERSION_WINDOW_DAYS = 7
#: Share of eligible users the campaign reaches, and of them the treated share.
AUDIENCE_SHARE = 0.6
TREATMENT_SHARE = 0.5
#: Planted effect: a treated *active* user places one extra coupon order within
#: the conversion window with this probability (an absolute uplift of conversion).
UPLIFT_PROBABILITY = 0.06
COUPON_CENTS = 2000
OPEN_RATE = 0.3


def campaign_id(calendar: ShopCalendar) -> str:
    """Identifier of the planted campaign, named after the promo it leads up to.

    With the default end date (October 31) it is ``camp_2026_double11_coupon``.
    """
    touch = calendar.end - dt.timedelta(days=TOUCH_DAYS_BEFORE_END)
    if touch.month in (10, 11):
        occasion = "double11"
    elif touch.month in (5, 6):
        occasion = "618"
    else:
        occasion = f"m{touch.month:02d}"
    return f"camp_{touch.year}_{occasion}_coupon"


@dataclass
class CampaignChunk:
    """Who the campaign reached in one chunk, with which variant, and the planted responders."""

    touched: np.ndarray
    variant: np.ndarray  # TREATMENT / CONTROL, -1 when not touched
    touch_us: np.ndarray  # 0 when not touched
    channel: np.ndarray
    opened: np.ndarray
    uplift: np.ndarray  # treated users who place the planted extra order

    def variant_labels(self) -> pa.Array:
        """Variant per user (null when not touched), for the truth table."""
        return string_codes(VARIANTS, self.variant)


def draw_campaign(
    rng: np.random.Generator, users: UserChunk, calendar: ShopCalendar
) -> CampaignChunk:
    """Pick the audience among users still active at the touch day and split it at random."""
    n = users.size
    touch_day = calendar.n_days - TOUCH_DAYS_BEFORE_END
    send_us = (
        calendar.start_us + touch_day * MICROS_PER_DAY + 10 * 3600 * MICROS_PER_SECOND
        + rng.integers(0, 2 * 3600 * MICROS_PER_SECOND, n)
    )
    eligible = (
        np.isin(users.lifecycle, [ACTIVE, NEW, HIGH_POTENTIAL])
        & (users.lower_us < send_us - MICROS_PER_DAY)
    )
    touched = eligible & (rng.random(n) < AUDIENCE_SHARE)
    variant = np.where(rng.random(n) < TREATMENT_SHARE, TREATMENT, CONTROL)
    variant = np.where(touched, variant, -1)
    # Only active users respond, so the per-lifecycle breakdown shows where the effect is;
    # new and high-potential users keep their planted lifecycle.
    uplift = (variant == TREATMENT) & (users.lifecycle == ACTIVE) & (
        rng.random(n) < UPLIFT_PROBABILITY
    )
    opened = (variant == TREATMENT) & ((rng.random(n) < OPEN_RATE) | uplift)
    return CampaignChunk(
        touched=touched,
        variant=variant,
        touch_us=np.where(touched, send_us, 0),
        channel=rng.integers(0, len(TOUCH_CHANNELS), n),
        opened=opened,
        uplift=uplift,
    )


def uplift_order_times(
    rng: np.random.Generator, campaign: CampaignChunk, calendar: ShopCalendar
) -> tuple[np.ndarray, np.ndarray]:
    """Users and times of the planted extra orders, 10 minutes to 7 days after the touch."""
    user = np.flatnonzero(campaign.uplift)
    earliest = campaign.touch_us[user] + 600 * MICROS_PER_SECOND
    latest = np.minimum(
        campaign.touch_us[user] + CONVERSION_WINDOW_DAYS * MICROS_PER_DAY, calendar.end_us
    ) - 1
    times = earliest + (rng.random(len(user)) * (latest - earliest)).astype(np.int64)
    return user, times


def touches_table(campaign: CampaignChunk, users: UserChunk, calendar: ShopCalendar) -> pa.Table:
    """Rows of ``touches``: one per reached user; control users were held out (not sent)."""
    rows = np.flatnonzero(campaign.touched)
    treated = campaign.variant[rows] == TREATMENT
    n = len(rows)
    return table_from_columns("touches", {
        "campaign_id": pa.array(np.full(n, campaign_id(calendar)), pa.string()),
        "user_id": users.ids.take(pa.array(rows)),
        "variant": string_codes(VARIANTS, campaign.variant[rows]),
        "channel": string_codes(TOUCH_CHANNELS, campaign.channel[rows]),
        "touch_time": timestamp_array(campaign.touch_us[rows]),
        "opened": pa.array(campaign.opened[rows], mask=~treated),
        "used": pa.array(campaign.uplift[rows], mask=~treated),
    })


def conversions(
    campaign: CampaignChunk,
    order_user: np.ndarray,
    order_us: np.ndarray,
    valid: np.ndarray,
    lifecycle: np.ndarray,
    lifecycles: tuple[int, ...] | None = None,
) -> dict[str, tuple[int, int]]:
    """(reached users, users with a valid order in the conversion window) per variant.

    ``lifecycles`` restricts the count to users of those planted lifecycles.
    """
    in_scope = np.ones(len(campaign.variant), dtype=bool)
    if lifecycles is not None:
        in_scope = np.isin(lifecycle, lifecycles)
    variant = np.where(in_scope, campaign.variant, -1)
    touch = campaign.touch_us[order_user]
    in_window = (
        valid & (variant[order_user] >= 0) & (order_us >= touch)
        & (order_us < touch + CONVERSION_WINDOW_DAYS * MICROS_PER_DAY)
    )
    converted = np.zeros(len(variant), dtype=bool)
    converted[order_user[in_window]] = True
    return {
        label: (int((variant == code).sum()), int((converted & (variant == code)).sum()))
        for code, label in enumerate(VARIANTS)
    }
