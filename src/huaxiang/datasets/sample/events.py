"""Behaviour events of one chunk: the funnel around each order plus browsing sessions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from huaxiang.datasets.sample.arrow import (
    string_codes,
    table_from_columns,
    take_strings,
    timestamp_array,
)
from huaxiang.datasets.sample.calendar import (
    BASE,
    MICROS_PER_DAY,
    MICROS_PER_SECOND,
    OUTING,
    PROMO,
    ShopCalendar,
)
from huaxiang.datasets.sample.catalog import SCENE_SLUGS, Catalog
from huaxiang.datasets.sample.orders import OrderChunk
from huaxiang.datasets.sample.personas import (
    ACTIVE,
    CHURNED,
    HIGH_POTENTIAL,
    NEW,
    PERSONA_SLUGS,
    POTENTIAL,
    SILENT,
)
from huaxiang.datasets.sample.sampling import user_time_order
from huaxiang.datasets.sample.users import UserChunk
from huaxiang.model.schema import EVENT_TYPES

_SECOND = MICROS_PER_SECOND
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
TYPE_CODE = {name: code for code, name in enumerate(EVENT_TYPES)}

#: Share of an outing lover's sessions spent on outing products (郊游 scene).
OUTING_SESSION_SHARE = 0.45
#: Share of a promo-sensitive user's sessions that follow the promo calendar.
PROMO_SESSION_SHARE = 0.5
#: Mean views per session beyond the first, and per-view favorite / cart rates.
EXTRA_VIEWS = 2.2
FAVORITE_RATE, CART_RATE = 0.05, 0.06
OUTING_FAVORITE_RATE, OUTING_CART_RATE = 0.25, 0.2
#: Per-session means of the other actions.
SEARCHES, CLICKS, AD_CLICKS, SHARES, TASKS, CONTENT_VIEWS = 0.5, 0.5, 0.07, 0.05, 0.1, 0.3
SHARE_FACTOR = {"student": 3.0, "small_town_youth": 2.0, "urban_professional": 1.5}
TASK_FACTOR = {"promo_hunter": 3.0, "silver": 2.0, "small_town_family": 1.5}
#: Forced recent sessions: active and new users visited in the last 14 days,
#: high-potential users acted in the last 30.
RECENT_VISIT_DAYS = 14
HIGH_POTENTIAL_DAYS = 30
#: Users who stopped (potential, silent, churned) were last seen within this many
#: days before stopping.
LAST_SEEN_DAYS = 7


def _persona_factor(mapping: dict[str, float]) -> np.ndarray:
    return np.array([mapping.get(slug, 1.0) for slug in PERSONA_SLUGS])


@dataclass
class EventChunk:
    """Events of one chunk, sorted by (user, time); negative codes mean null."""

    user: np.ndarray
    time_us: np.ndarray
    event_type: np.ndarray
    product: np.ndarray
    keyword: np.ndarray
    content: np.ndarray
    null_user: np.ndarray

    @property
    def size(self) -> int:
        """Number of events."""
        return len(self.user)

    def adjacent_duplicates(self) -> int:
        """Rows identical to the row before them (planted duplicates sit next to their twin)."""
        same = np.ones(max(self.size - 1, 0), dtype=bool)
        for column in (self.user, self.time_us, self.event_type, self.product, self.keyword,
                       self.content, self.null_user):
            same &= column[1:] == column[:-1]
        return int(same.sum())

    def take(self, rows: np.ndarray) -> EventChunk:
        """The events at ``rows``, in that order."""
        return EventChunk(
            self.user[rows], self.time_us[rows], self.event_type[rows], self.product[rows],
            self.keyword[rows], self.content[rows], self.null_user[rows],
        )


class _EventBuffer:
    """Collects event parts before they are concatenated and sorted."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(
        self,
        event_type: str,
        user: np.ndarray,
        time_us: np.ndarray,
        product: np.ndarray | None = None,
        keyword: np.ndarray | None = None,
        content: np.ndarray | None = None,
    ) -> None:
        n = len(user)
        missing = np.full(n, -1, dtype=np.int32)

        def codes(values: np.ndarray | None) -> np.ndarray:
            return missing if values is None else values.astype(np.int32)

        self.parts.append((
            user.astype(np.int32), time_us.astype(np.int64),
            np.full(n, TYPE_CODE[event_type], dtype=np.int8),
            codes(product), codes(keyword), codes(content),
        ))

    def build(self, rng: np.random.Generator, users: UserChunk) -> EventChunk:
        user, time_us, event_type, product, keyword, content = (
            np.concatenate([part[i] for part in self.parts]) for i in range(6)
        )
        users.fit_times(rng, user, time_us)
        chunk = EventChunk(user, time_us, event_type, product, keyword, content,
                           np.zeros(len(user), dtype=bool))
        return chunk.take(user_time_order(user, time_us))


def draw_events(
    rng: np.random.Generator,
    users: UserChunk,
    orders: OrderChunk,
    catalog: Catalog,
    calendar: ShopCalendar,
) -> EventChunk:
    """Every event of the chunk's users."""
    buffer = _EventBuffer()
    _order_funnel(rng, buffer, users, orders)
    _sessions(rng, buffer, users, catalog, calendar)
    return buffer.build(rng, users)


def _between(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    return rng.integers(low, high, n, dtype=np.int64)


def _order_funnel(
    rng: np.random.Generator, buffer: _EventBuffer, users: UserChunk, orders: OrderChunk
) -> None:
    """view → (favorite) → cart → purchase for every order, and some reviews afterwards."""
    n = orders.size
    user, time_us = orders.user, orders.time_us
    product = orders.line_product[orders.first_line]
    buffer.add("purchase", user, time_us, product)
    buffer.add("visit", user, time_us - _between(rng, 3 * _MINUTE, 40 * _MINUTE, n))
    buffer.add("view", user, time_us - _between(rng, 2 * _MINUTE, 2 * MICROS_PER_DAY, n), product)
    carted = rng.random(n) < 0.6
    buffer.add("cart", user[carted],
               time_us[carted] - _between(rng, 30 * _SECOND, _HOUR, int(carted.sum())),
               product[carted])
    extra_line = (orders.line_no > 1) & (rng.random(len(orders.line_no)) < 0.5)
    line_order = orders.line_order[extra_line]
    buffer.add("cart", user[line_order],
               time_us[line_order] - _between(rng, 30 * _SECOND, 2 * _HOUR, len(line_order)),
               orders.line_product[extra_line])
    favorited = rng.random(n) < 0.1
    buffer.add("favorite", user[favorited],
               time_us[favorited] - _between(rng, _HOUR, 5 * MICROS_PER_DAY, int(favorited.sum())),
               product[favorited])
    reviewed = rng.random(n) < 0.12
    review_time = time_us[reviewed] + _between(
        rng, 2 * MICROS_PER_DAY, 12 * MICROS_PER_DAY, int(reviewed.sum())
    )
    in_time = review_time <= users.upper_us[user[reviewed]]
    buffer.add("review", user[reviewed][in_time], review_time[in_time],
               product[reviewed][in_time])


def _sessions(
    rng: np.random.Generator,
    buffer: _EventBuffer,
    users: UserChunk,
    catalog: Catalog,
    calendar: ShopCalendar,
) -> None:
    """Browsing sessions: a visit, searches, views, favorites, carts, clicks, content, ..."""
    n_days = calendar.n_days
    per_user = rng.poisson(users.session_rate * users.active_days)
    session_user = np.repeat(np.arange(users.size, dtype=np.int32), per_user)
    first_day = users.first_day[session_user]
    # Sessions that make the planted lifecycles recoverable from the last activity alone:
    # active and new users visited recently, high-potential users acted in the last 30
    # days, and everyone who stopped was last seen in the week before stopping.
    recent = np.flatnonzero(np.isin(users.lifecycle, [ACTIVE, NEW])).astype(np.int32)
    interested = np.flatnonzero(users.lifecycle == HIGH_POTENTIAL).astype(np.int32)
    fading = np.flatnonzero(np.isin(users.lifecycle, [POTENTIAL, SILENT, CHURNED]))
    fading = fading.astype(np.int32)
    first_day = np.concatenate([
        first_day,
        np.maximum(users.first_day[recent], n_days - RECENT_VISIT_DAYS),
        np.maximum(users.first_day[interested], n_days - HIGH_POTENTIAL_DAYS),
        np.maximum(users.first_day[fading], users.last_day[fading] - LAST_SEEN_DAYS + 1),
    ])
    session_user = np.concatenate([session_user, recent, interested, fading])
    last_day = users.last_day[session_user]
    n = len(session_user)

    outing = users.outing_lover[session_user] & (rng.random(n) < OUTING_SESSION_SHARE)
    browse = users.browse_cumulative[session_user]
    top = np.minimum((browse < rng.random(n)[:, None]).sum(axis=1), browse.shape[1] - 1)
    group = np.where(outing, catalog.outing_group, top)
    promo = users.promo_sensitive[session_user] & (rng.random(n) < PROMO_SESSION_SHARE)
    profile = np.where(outing, OUTING, np.where(promo, PROMO, BASE))
    start = calendar.draw_times(rng, profile, first_day, last_day)
    premium = users.big_spender[session_user]

    def products(session: np.ndarray) -> np.ndarray:
        chosen = np.empty(len(session), dtype=np.int32)
        rich = premium[session]
        chosen[~rich] = catalog.popular_products.sample(rng, group[session][~rich])
        chosen[rich] = catalog.premium_products.sample(rng, group[session][rich])
        return chosen

    def repeat_sessions(mean: np.ndarray | float) -> np.ndarray:
        return np.repeat(np.arange(n), rng.poisson(mean, n))

    def during(session: np.ndarray, reach: int) -> np.ndarray:
        return start[session] + _between(rng, 0, reach, len(session))

    buffer.add("visit", session_user, start)
    searched = repeat_sessions(np.where(outing, 0.8, SEARCHES))
    buffer.add("search", session_user[searched], during(searched, 5 * _MINUTE),
               keyword=_keywords(rng, catalog, outing[searched], products(searched)))
    viewed = np.repeat(np.arange(n), 1 + rng.poisson(EXTRA_VIEWS, n))
    view_time = during(viewed, 30 * _MINUTE)
    view_product = products(viewed)
    buffer.add("view", session_user[viewed], view_time, view_product)
    in_outing = outing[viewed]
    favorite = rng.random(len(viewed)) < np.where(in_outing, OUTING_FAVORITE_RATE, FAVORITE_RATE)
    buffer.add("favorite", session_user[viewed[favorite]],
               view_time[favorite] + _between(rng, 5 * _SECOND, 5 * _MINUTE, int(favorite.sum())),
               view_product[favorite])
    cart = rng.random(len(viewed)) < np.where(in_outing, OUTING_CART_RATE, CART_RATE)
    cart_time = view_time[cart] + _between(rng, 5 * _SECOND, 5 * _MINUTE, int(cart.sum()))
    buffer.add("cart", session_user[viewed[cart]], cart_time, view_product[cart])
    removed = rng.random(len(cart_time)) < 0.3
    buffer.add("cart_remove", session_user[viewed[cart]][removed],
               cart_time[removed] + _between(rng, _MINUTE, MICROS_PER_DAY, int(removed.sum())),
               view_product[cart][removed])
    for event_type, mean in (("click", CLICKS), ("ad_click", AD_CLICKS)):
        acted = repeat_sessions(mean)
        buffer.add(event_type, session_user[acted], during(acted, 30 * _MINUTE), products(acted))
    persona = users.persona[session_user]
    shared = repeat_sessions(SHARES * _persona_factor(SHARE_FACTOR)[persona])
    shares_content = rng.random(len(shared)) < 0.3
    buffer.add("share", session_user[shared], during(shared, 30 * _MINUTE),
               np.where(shares_content, -1, products(shared)),
               content=np.where(shares_content,
                                catalog.content_by_group.sample(rng, group[shared]), -1))
    tasks = repeat_sessions(TASKS * _persona_factor(TASK_FACTOR)[persona])
    buffer.add("task", session_user[tasks], during(tasks, 30 * _MINUTE))
    read = repeat_sessions(CONTENT_VIEWS)
    buffer.add("view", session_user[read], during(read, 30 * _MINUTE),
               content=catalog.content_by_group.sample(rng, group[read]))


def _keywords(
    rng: np.random.Generator, catalog: Catalog, outing: np.ndarray, product: np.ndarray
) -> np.ndarray:
    """Search words: a scene word in outing sessions, else the product's leaf or brand + leaf."""
    by_product = np.where(rng.random(len(product)) < 0.5, catalog.product_keyword_leaf[product],
                          catalog.product_keyword_brand[product])
    outing_slot = SCENE_SLUGS.index("outing")
    scene_word = catalog.scene_keyword_start[outing_slot] + (
        rng.random(len(product)) * catalog.scene_keyword_count[outing_slot]
    ).astype(np.int32)
    return np.where(outing & (rng.random(len(product)) < 0.5), scene_word, by_product)


def plant_dirty_events(
    rng: np.random.Generator, events: EventChunk, duplicates: int, null_users: int
) -> EventChunk:
    """Blank the user of ``null_users`` events and repeat ``duplicates`` others exactly."""
    rows = rng.choice(events.size, size=min(duplicates + null_users, events.size), replace=False)
    events.null_user[rows[duplicates:]] = True
    order = np.sort(np.concatenate([np.arange(events.size), rows[:duplicates]]), kind="stable")
    return events.take(order)


def events_table(events: EventChunk, users: UserChunk, catalog: Catalog) -> pa.Table:
    """The ``events`` table."""
    return table_from_columns("events", {
        "user_id": take_strings(users.ids, np.where(events.null_user, -1, events.user)),
        "event_time": timestamp_array(events.time_us),
        "event_type": string_codes(EVENT_TYPES, events.event_type),
        "product_id": take_strings(catalog.product_ids, events.product),
        "keyword": take_strings(catalog.keywords, events.keyword),
        "content_id": take_strings(catalog.content_ids, events.content),
        "is_orphan": pa.array(np.zeros(events.size, dtype=bool)),
    })
