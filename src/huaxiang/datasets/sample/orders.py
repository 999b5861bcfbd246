"""Orders and order lines of one chunk, following each user's category rhythms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from huaxiang.datasets.sample.arrow import (
    int_array,
    money_array,
    pad_ids,
    string_codes,
    table_from_columns,
    take_strings,
    timestamp_array,
)
from huaxiang.datasets.sample.calendar import BASE, OUTING, PROMO, ShopCalendar
from huaxiang.datasets.sample.campaign import COUPON_CENTS, CampaignChunk, uplift_order_times
from huaxiang.datasets.sample.catalog import Catalog
from huaxiang.datasets.sample.personas import (
    ACTIVE,
    CHURNED,
    HIGH_POTENTIAL,
    NEW,
    PERSONA_SLUGS,
    POTENTIAL,
    SILENT,
)
from huaxiang.datasets.sample.reference import (
    ACQUISITION_CHANNELS,
    CITIES,
    ORDER_CHANNELS,
    PAYMENT_METHODS,
    TOP_CATEGORIES,
)
from huaxiang.datasets.sample.sampling import rowwise_choice, user_time_order
from huaxiang.datasets.sample.users import CITY_BY_POPULATION, CITY_TIERS, UserChunk

_OUTDOOR = [top.slug for top in TOP_CATEGORIES].index("outdoor")
_CITY_NAMES = pa.array([c[0] for c in CITIES], pa.string())
#: Active users ordered within this many days of the end date.
RECENT_ORDER_DAYS = 60
AFTER_SALE_RATE = 0.05
COUPON_DENOMINATIONS_CENTS = np.array([500, 1000, 2000, 5000, 10000])
EXPENSIVE_CENTS = 100_000


@dataclass
class OrderChunk:
    """Orders sorted by (user, time) and their lines, as arrays."""

    user: np.ndarray
    time_us: np.ndarray
    top: np.ndarray
    amount_cents: np.ndarray
    coupon_cents: np.ndarray
    is_after_sale: np.ndarray
    channel: np.ndarray
    payment: np.ndarray
    ship_city: np.ndarray
    uplift: np.ndarray
    line_count: np.ndarray
    line_order: np.ndarray
    line_no: np.ndarray
    line_product: np.ndarray
    line_quantity: np.ndarray
    line_unit_cents: np.ndarray
    line_discount_cents: np.ndarray
    #: Orders made dirty on purpose (non-positive amount, not after-sale).
    dirty: np.ndarray

    @property
    def size(self) -> int:
        """Number of orders."""
        return len(self.user)

    @property
    def first_line(self) -> np.ndarray:
        """Index of each order's first line."""
        return np.concatenate([[0], np.cumsum(self.line_count)[:-1]])

    def valid_spend_per_user(self, n_users: int) -> np.ndarray:
        """Sum of valid (not after-sale, positive) order amounts per user, in cents."""
        valid = ~self.is_after_sale & (self.amount_cents > 0)
        return np.bincount(
            self.user[valid], weights=self.amount_cents[valid], minlength=n_users
        )


def draw_orders(
    rng: np.random.Generator,
    users: UserChunk,
    campaign: CampaignChunk,
    catalog: Catalog,
    calendar: ShopCalendar,
) -> OrderChunk:
    """Draw every order of the chunk's users (lines, amounts, coupons, after-sale flags)."""
    n = users.size
    counts = rng.poisson(users.buy_rate * users.active_days[:, None].astype(np.float64))
    counts[np.isin(users.lifecycle, [POTENTIAL, HIGH_POTENTIAL, NEW])] = 0
    # Lifecycles need a minimum number of orders: top up in a category the user likes.
    needed = np.select(
        [users.lifecycle == NEW, users.lifecycle == SILENT,
         np.isin(users.lifecycle, [ACTIVE, CHURNED])],
        [1, 2, 1],  # active users also get the recent order below
        default=0,
    )
    missing = np.maximum(needed - counts.sum(axis=1), 0)
    favourite = rowwise_choice(rng, users.preference)
    counts[np.arange(n), favourite] += missing

    cells = counts.ravel()
    user = np.repeat(np.repeat(np.arange(n, dtype=np.int32), counts.shape[1]), cells)
    top = np.repeat(np.tile(np.arange(counts.shape[1], dtype=np.int16), n), cells)
    profile = np.where(users.promo_sensitive[user], PROMO, BASE)
    profile = np.where(
        users.outing_lover[user] & (top == _OUTDOOR) & (profile == BASE), OUTING, profile
    )
    # Stratified quantiles space a user's orders in one category regularly over the
    # active interval (as a purchase cycle does), while the day profile still bends them.
    cell_start = np.repeat(np.cumsum(cells) - cells, cells)
    rank = np.arange(len(user)) - cell_start
    quantile = (rank + rng.uniform(0.1, 0.9, len(user))) / np.repeat(cells, cells)
    time_us = calendar.draw_times(
        rng, profile, users.first_day[user], users.last_day[user], quantile
    )

    # Active users have ordered recently.
    recent_user = np.flatnonzero(users.lifecycle == ACTIVE).astype(np.int32)
    recent_first = np.maximum(users.first_day[recent_user], calendar.n_days - RECENT_ORDER_DAYS)
    recent_time = calendar.draw_times(
        rng, np.full(len(recent_user), BASE), recent_first, users.last_day[recent_user]
    )
    recent_top = rowwise_choice(rng, users.preference[recent_user])
    # The campaign's planted responders.
    uplift_user, uplift_time = uplift_order_times(rng, campaign, calendar)
    uplift_top = rowwise_choice(rng, users.preference[uplift_user])

    user = np.concatenate([user, recent_user, uplift_user.astype(np.int32)])
    top = np.concatenate([top, recent_top.astype(np.int16), uplift_top.astype(np.int16)])
    time_us = np.concatenate([time_us, recent_time, uplift_time])
    uplift = np.zeros(len(user), dtype=bool)
    uplift[len(user) - len(uplift_user):] = True
    users.fit_times(rng, user, time_us)
    order = user_time_order(user, time_us)
    user, top, time_us, uplift = user[order], top[order], time_us[order], uplift[order]
    return _fill_orders(rng, users, catalog, calendar, user, top, time_us, uplift)


def _fill_orders(
    rng: np.random.Generator,
    users: UserChunk,
    catalog: Catalog,
    calendar: ShopCalendar,
    user: np.ndarray,
    top: np.ndarray,
    time_us: np.ndarray,
    uplift: np.ndarray,
) -> OrderChunk:
    """Lines, money and order attributes for orders already placed in time."""
    n_orders = len(user)
    big = users.big_spender[user]
    line_count = 1 + np.minimum(rng.poisson(np.where(big, 1.2, 0.7)), 5)
    line_order = np.repeat(np.arange(n_orders), line_count)
    first_line = np.concatenate([[0], np.cumsum(line_count)[:-1]])
    line_no = np.arange(len(line_order)) - first_line[line_order] + 1
    # Line 1 is from the order's category; others mostly too, else another favourite.
    line_user = user[line_order]
    line_top = top[line_order].astype(np.int64)
    other = (line_no > 1) & (rng.random(len(line_order)) < 0.45)
    line_top[other] = rowwise_choice(rng, users.preference[line_user[other]])
    premium = users.big_spender[line_user]
    product = np.empty(len(line_order), dtype=np.int32)
    product[~premium] = catalog.popular_products.sample(rng, line_top[~premium])
    product[premium] = catalog.premium_products.sample(rng, line_top[premium])
    unit = catalog.product_price_cents[product]
    quantity = 1 + rng.poisson(catalog.product_extra_units[product])
    quantity = np.where(unit >= EXPENSIVE_CENTS, 1, np.minimum(quantity, 9))
    gross = unit * quantity

    promo_day = calendar.in_promo(time_us)
    line_promo = promo_day[line_order]
    rate = np.where(line_promo, rng.uniform(0.05, 0.2, len(gross)),
                    np.where(rng.random(len(gross)) < 0.15, rng.uniform(0.02, 0.1, len(gross)), 0))
    discount = np.floor(gross * rate / 10).astype(np.int64) * 10

    # Coupons go on line 1 and never take it below 1 yuan.
    coupon_probability = np.where(users.promo_sensitive[user], 0.65, 0.15)
    coupon_probability = np.minimum(np.where(promo_day, coupon_probability * 1.5,
                                             coupon_probability), 0.9)
    use_coupon = (rng.random(n_orders) < coupon_probability) | uplift
    denomination = COUPON_DENOMINATIONS_CENTS[
        rng.integers(0, len(COUPON_DENOMINATIONS_CENTS), n_orders)
    ]
    denomination = np.where(uplift, COUPON_CENTS, denomination)
    room = gross[first_line] - discount[first_line] - 100
    coupon = np.where(use_coupon, np.minimum(denomination, room // 2 // 100 * 100), 0)
    coupon = np.maximum(coupon, 0)
    discount[first_line] += coupon
    net = gross - discount
    amount = np.add.reduceat(net, first_line)

    persona = users.persona[user]
    silver = persona == PERSONA_SLUGS.index("silver")
    channel_weights = np.where(silver[:, None], [0.35, 0.45, 0.05, 0.15], [0.65, 0.15, 0.12, 0.08])
    channel = rowwise_choice(rng, channel_weights)
    gift_card_user = users.acquisition[user] == ACQUISITION_CHANNELS.index("E卡")
    payment_weights = np.where(gift_card_user[:, None], [0.3, 0.2, 0.1, 0.1, 0.3],
                               [0.45, 0.3, 0.12, 0.1, 0.03])
    payment = rowwise_choice(rng, payment_weights)
    ship_city = np.where(rng.random(n_orders) < 0.88, users.true_city[user],
                         CITY_BY_POPULATION.sample(rng, np.zeros(n_orders, dtype=np.int64)))
    after_sale_rate = np.where(big, AFTER_SALE_RATE * 1.4, AFTER_SALE_RATE)
    return OrderChunk(
        user=user, time_us=time_us, top=top, amount_cents=amount, coupon_cents=coupon,
        is_after_sale=rng.random(n_orders) < after_sale_rate, channel=channel, payment=payment,
        ship_city=ship_city, uplift=uplift, line_count=line_count, line_order=line_order,
        line_no=line_no, line_product=product, line_quantity=quantity, line_unit_cents=unit,
        line_discount_cents=discount, dirty=np.zeros(n_orders, dtype=bool),
    )


def plant_dirty_orders(rng: np.random.Generator, orders: OrderChunk, count: int) -> None:
    """Make ``count`` valid orders non-positive (zero or negative amount), in place."""
    candidates = np.flatnonzero(~orders.is_after_sale)
    chosen = rng.choice(candidates, size=min(count, len(candidates)), replace=False)
    orders.amount_cents[chosen] = np.where(
        np.arange(len(chosen)) % 2 == 0, 0, -orders.amount_cents[chosen]
    )
    orders.dirty[chosen] = True


def orders_tables(
    orders: OrderChunk, users: UserChunk, catalog: Catalog, first_order_number: int
) -> tuple[pa.Table, pa.Table]:
    """The ``orders`` and ``order_items`` tables; order ids continue from ``first_order_number``."""
    order_ids = pad_ids("O", np.arange(first_order_number, first_order_number + orders.size), 10)
    has_coupon = orders.coupon_cents > 0
    orders_table = table_from_columns("orders", {
        "order_id": order_ids,
        "user_id": users.ids.take(pa.array(orders.user)),
        "order_time": timestamp_array(orders.time_us),
        "amount": money_array(orders.amount_cents),
        "is_after_sale": pa.array(orders.is_after_sale),
        "refund_amount": money_array(orders.amount_cents, orders.is_after_sale),
        "coupon_used": pa.array(has_coupon),
        "coupon_amount": money_array(orders.coupon_cents, has_coupon),
        "channel": string_codes(ORDER_CHANNELS, orders.channel),
        "payment_method": string_codes(PAYMENT_METHODS, orders.payment),
        "ship_city": take_strings(_CITY_NAMES, orders.ship_city),
        "ship_city_tier": int_array(CITY_TIERS[orders.ship_city]),
    })
    items_table = table_from_columns("order_items", {
        "order_id": order_ids.take(pa.array(orders.line_order)),
        "line_no": int_array(orders.line_no),
        "product_id": catalog.product_ids.take(pa.array(orders.line_product)),
        "quantity": int_array(orders.line_quantity),
        "unit_price": money_array(orders.line_unit_cents),
        "discount": money_array(orders.line_discount_cents),
        "is_orphan": pa.array(np.zeros(len(orders.line_order), dtype=bool)),
    })
    return orders_table, items_table
