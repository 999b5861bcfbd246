"""``generate_sample``: write the deterministic sample shop, chunk by chunk."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from huaxiang.datasets.sample.arrow import ParquetSink
from huaxiang.datasets.sample.calendar import ShopCalendar
from huaxiang.datasets.sample.campaign import (
    CampaignChunk,
    conversions,
    draw_campaign,
    touches_table,
)
from huaxiang.datasets.sample.catalog import Catalog, build_catalog
from huaxiang.datasets.sample.events import (
    EventChunk,
    draw_events,
    events_table,
    plant_dirty_events,
)
from huaxiang.datasets.sample.orders import (
    OrderChunk,
    draw_orders,
    orders_tables,
    plant_dirty_orders,
)
from huaxiang.datasets.sample.personas import ACTIVE, LIFECYCLE_SLUGS, PERSONA_SLUGS
from huaxiang.datasets.sample.planted import planted_description
from huaxiang.datasets.sample.users import UserChunk, draw_users, truth_table, users_table
from huaxiang.errors import ConfigError

#: Users generated together; fixed, so output never depends on the machine.
CHUNK_USERS = 50_000
#: Dirty rows per clean row (about 0.01 %), at least one of each kind per chunk.
DIRTY_RATE = 1e-4
OUTPUT_TABLES = (
    "users", "orders", "order_items", "events", "products", "content", "touches", "truth",
)
_CATALOG_STREAM, _CHUNK_STREAM = 0, 1

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SampleSummary:
    """Rows written per file and how long generation took."""

    out_dir: Path
    users: int
    orders: int
    order_items: int
    events: int
    products: int
    content: int
    touches: int
    truth: int
    elapsed_seconds: float

    @property
    def rows(self) -> dict[str, int]:
        """Row count per output table, in file order."""
        return {name: getattr(self, name) for name in OUTPUT_TABLES}


@dataclass
class _Tally:
    """Counts of what was planted, summed over chunks for planted.json."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, prefix: str, labels: tuple[str, ...], codes: np.ndarray) -> None:
        for label, count in zip(labels, np.bincount(codes, minlength=len(labels)), strict=True):
            self.counts[f"{prefix}.{label}"] += int(count)


def generate_sample(
    out_dir: Path,
    users: int = 20_000,
    seed: int = 7,
    end: dt.date = dt.date(2026, 10, 31),
    years: int = 2,
    progress: ProgressCallback | None = None,
    dirty: bool = True,
) -> SampleSummary:
    """Write the sample shop as Parquet files plus ``truth.parquet`` and ``planted.json``.

    Parameters
    ----------
    out_dir
        Folder to write into (created if missing); existing files are replaced.
    users
        Number of users. About 13.5 orders and 97 events are written per user.
    seed
        Seed of every random stream: the same (users, seed, end, years, dirty)
        gives byte-identical files.
    end
        Last day of data; every timestamp is before midnight after it.
    years
        Length of the data window in years of 365 days.
    progress
        Called as ``progress(step, done, total)``: ``("catalog", 1, 1)``, then
        ``("users", users_written, users)`` after each chunk of 50,000 users,
        then ``("planted", 1, 1)``.
    dirty
        Plant a few rejectable rows (duplicate events, events without a user,
        non-positive orders); their counts are in ``planted.json`` under ``dirty``.

    Returns
    -------
    SampleSummary
        Rows per file and the elapsed seconds.
    """
    if users < 1:
        raise ConfigError(f"users must be at least 1, got {users}.")
    if years < 1:
        raise ConfigError(f"years must be at least 1, got {years}.")
    started = time.perf_counter()
    report = progress or (lambda step, done, total: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    calendar = ShopCalendar(end, years)
    catalog = build_catalog(np.random.default_rng([seed, _CATALOG_STREAM]))
    tally = _Tally()
    with ParquetSink(out_dir, OUTPUT_TABLES) as sink:
        sink.write("products", catalog.products)
        sink.write("content", catalog.content)
        report("catalog", 1, 1)
        for chunk_index, first in enumerate(range(0, users, CHUNK_USERS)):
            size = min(CHUNK_USERS, users - first)
            rng = np.random.default_rng([seed, _CHUNK_STREAM, chunk_index])
            tables = _generate_chunk(
                rng, calendar, catalog, first + 1, size, sink.rows["orders"] + 1, dirty, tally
            )
            for name, table in tables.items():
                sink.write(name, table)
            report("users", first + size, users)
        rows = dict(sink.rows)
    planted = planted_description(
        params={"users": users, "seed": seed, "end": end.isoformat(), "years": years,
                "dirty": dirty, "chunk_users": CHUNK_USERS},
        calendar=calendar,
        catalog=catalog,
        rows=rows,
        counts=dict(tally.counts),
    )
    (out_dir / "planted.json").write_text(
        json.dumps(planted, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    report("planted", 1, 1)
    return SampleSummary(out_dir=out_dir, **rows, elapsed_seconds=time.perf_counter() - started)


def _generate_chunk(
    rng: np.random.Generator,
    calendar: ShopCalendar,
    catalog: Catalog,
    first_user_number: int,
    size: int,
    first_order_number: int,
    dirty: bool,
    tally: _Tally,
) -> dict[str, pa.Table]:
    """Every table of ``size`` users; user and order numbers continue the previous chunks."""
    users = draw_users(rng, calendar, first_user_number, size)
    campaign = draw_campaign(rng, users, calendar)
    orders = draw_orders(rng, users, campaign, catalog, calendar)
    if dirty:
        plant_dirty_orders(rng, orders, _dirty_count(orders.size))
    events = draw_events(rng, users, orders, catalog, calendar)
    if dirty:
        events = plant_dirty_events(
            rng, events, _dirty_count(events.size), _dirty_count(events.size)
        )
    orders_table, items_table = orders_tables(orders, users, catalog, first_order_number)
    tables = {
        "users": users_table(rng, users, orders.valid_spend_per_user(size)),
        "orders": orders_table,
        "order_items": items_table,
        "events": events_table(events, users, catalog),
        "touches": touches_table(campaign, users, calendar),
        "truth": truth_table(
            users, calendar.start_epoch_day, campaign.variant_labels(),
            _uplift_per_user(orders.user[orders.uplift], size),
        ),
    }
    _count_chunk(tally, users, campaign, orders, events, calendar)
    return tables


def _uplift_per_user(uplift_users: np.ndarray, size: int) -> np.ndarray:
    flags = np.zeros(size, dtype=bool)
    flags[uplift_users] = True
    return flags


def _dirty_count(rows: int) -> int:
    return max(1, round(rows * DIRTY_RATE)) if rows else 0


def _count_chunk(
    tally: _Tally,
    users: UserChunk,
    campaign: CampaignChunk,
    orders: OrderChunk,
    events: EventChunk,
    calendar: ShopCalendar,
) -> None:
    """Add the chunk's planted counts to ``tally``."""
    tally.add("persona", PERSONA_SLUGS, users.persona)
    tally.add("lifecycle", LIFECYCLE_SLUGS, users.lifecycle)
    for name in ("outing_lover", "promo_sensitive", "big_spender", "has_child", "pet_owner"):
        tally.counts[f"flag.{name}"] += int(getattr(users, name).sum())
    valid_order = ~orders.is_after_sale & (orders.amount_cents > 0)
    for scope, lifecycles in (("all", None), ("active", (ACTIVE,))):
        for variant, (reached, converted) in conversions(
            campaign, orders.user, orders.time_us, valid_order, users.lifecycle, lifecycles
        ).items():
            tally.counts[f"campaign.{scope}.{variant}.users"] += reached
            tally.counts[f"campaign.{scope}.{variant}.converted"] += converted
    tally.counts["campaign.uplift_orders"] += int(orders.uplift.sum())
    tally.counts["dirty.nonpositive_orders"] += int(orders.dirty.sum())
    tally.counts["dirty.null_user_events"] += int(events.null_user.sum())
    tally.counts["dirty.duplicate_events"] += events.adjacent_duplicates()
    tally.counts["orders.after_sale"] += int(orders.is_after_sale.sum())
    tally.counts["orders.coupon_used"] += int((orders.coupon_cents > 0).sum())
    tally.counts["orders.in_promo_windows"] += int(calendar.in_promo(orders.time_us).sum())
