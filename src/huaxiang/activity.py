"""One user's recent orders and behaviour events, read from the workspace's canonical tables.

:func:`user_activity` answers "what did this user do lately?" for the console's user 360
page: the orders (with their lines and product names) and the events of the ``days``
before a snapshot date, newest first. Like the tag build, it only sees what was known
before the snapshot: rows strictly before midnight at the start of ``as_of``
(:func:`huaxiang.engine.compile.cut_tables` cuts the same way), so the timeline matches the
tags shown beside it.

Tables read: ``DIR/data/orders.parquet``, ``order_items.parquet``, ``events.parquet`` and,
for product names, ``products.parquet``. A workspace without ``events`` (or without
``orders``) gives an empty list for it and names the table under ``missing``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from huaxiang.errors import NotFoundError, RequestError, did_you_mean
from huaxiang.history import find_snapshot

#: Default look-back of the timeline, in days before the snapshot date.
DEFAULT_DAYS = 90
#: At most this many orders and this many events are returned (the newest).
DEFAULT_LIMIT = 500
#: Most product names listed per order.
_NAMES_PER_ORDER = 5


@dataclass(frozen=True)
class OrderRecord:
    """One order of the user: when, how much, and what was in it."""

    order_id: str
    order_time: dt.datetime
    amount: Decimal
    is_after_sale: bool
    units: int
    """Units over the order's lines (0 when ``order_items`` has no line of it)."""
    products: list[str]
    """Names of the products bought (the product id when the catalogue has no name), at most 5."""
    channel: str | None = None


@dataclass(frozen=True)
class EventRecord:
    """One behaviour event: when, what kind, and on which product or keyword."""

    event_time: dt.datetime
    event_type: str
    product_id: str | None = None
    product_name: str | None = None
    keyword: str | None = None


@dataclass(frozen=True)
class DaySummary:
    """One day of the timeline: orders, spend (after-sale records not counted) and events by type."""

    day: dt.date
    orders: int
    amount: Decimal
    events: dict[str, int]


@dataclass(frozen=True)
class UserActivity:
    """The user's orders and events in ``[since, as_of)``, newest first."""

    user_id: str
    as_of: dt.date
    since: dt.date
    orders: list[OrderRecord]
    events: list[EventRecord]
    orders_total: int
    """Orders in the window before ``limit`` cut the list."""
    events_total: int
    """Events in the window before ``limit`` cut the list."""
    missing: list[str] = field(default_factory=list)
    """Canonical tables the workspace does not have (their lists are empty)."""

    def by_day(self) -> list[DaySummary]:
        """Each day with an order or an event, newest first (over the returned, possibly cut, lists)."""
        orders: Counter[dt.date] = Counter()
        amounts: dict[dt.date, Decimal] = {}
        events: dict[dt.date, Counter[str]] = {}
        for order in self.orders:
            day = order.order_time.date()
            orders[day] += 1
            spent = Decimal(0) if order.is_after_sale else order.amount
            amounts[day] = amounts.get(day, Decimal(0)) + spent
        for event in self.events:
            events.setdefault(event.event_time.date(), Counter())[event.event_type] += 1
        days = sorted(set(orders) | set(events), reverse=True)
        return [
            DaySummary(
                day=day,
                orders=orders.get(day, 0),
                amount=amounts.get(day, Decimal(0)),
                events=dict(sorted(events.get(day, Counter()).items())),
            )
            for day in days
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: times as ISO text, money as numbers."""
        plain: dict[str, Any] = _plain(asdict(self))
        return plain


def user_activity(
    workspace_dir: str | Path,
    user_id: str,
    *,
    as_of: dt.date | None = None,
    days: int = DEFAULT_DAYS,
    limit: int = DEFAULT_LIMIT,
) -> UserActivity:
    """The orders and events of ``user_id`` in the ``days`` before ``as_of``, newest first.

    Parameters
    ----------
    workspace_dir
        The workspace (its ``data/`` folder holds the canonical tables).
    user_id
        The user, exactly as in the ``users`` table (ids are case-sensitive).
    as_of
        The snapshot date; only rows before midnight at its start are read. By default the
        latest snapshot's date.
    days
        How far back the timeline goes (1-3,650 days).
    limit
        Most orders and most events returned (the newest); ``orders_total`` and
        ``events_total`` count all of them in the window.

    Raises
    ------
    huaxiang.errors.RequestError
        ``days`` or ``limit`` out of range.
    huaxiang.errors.NotFoundError
        No snapshot (when ``as_of`` is not given), or a user id that is in none of the
        ``users``, ``orders`` and ``events`` tables (with a did-you-mean).
    """
    if not 1 <= days <= 3_650:
        raise RequestError(f"days must be from 1 to 3,650 (the look-back of the timeline), got {days}.")
    if limit < 1:
        raise RequestError(f"limit must be at least 1 (orders and events returned), got {limit}.")
    root = Path(workspace_dir)
    if as_of is None:
        as_of = find_snapshot(root, None).as_of
    since = as_of - dt.timedelta(days=days)
    start, end = dt.datetime.combine(since, dt.time.min), dt.datetime.combine(as_of, dt.time.min)
    data = root / "data"
    missing = [name for name in ("orders", "events") if not (data / f"{name}.parquet").is_file()]

    order_rows = _window(data / "orders.parquet", user_id, "order_time", start, end)
    event_rows = _window(data / "events.parquet", user_id, "event_time", start, end)
    if all(rows is None or rows.num_rows == 0 for rows in (order_rows, event_rows)):
        _require_known(data, user_id)

    orders_total = 0 if order_rows is None else order_rows.num_rows
    events_total = 0 if event_rows is None else event_rows.num_rows
    orders_list = [] if order_rows is None else _newest(order_rows, "order_time", limit).to_pylist()
    events_list = [] if event_rows is None else _newest(event_rows, "event_time", limit).to_pylist()

    product_ids = {row["product_id"] for row in events_list if row.get("product_id")}
    lines = _lines(data / "order_items.parquet", [row["order_id"] for row in orders_list])
    for rows in lines.values():
        product_ids.update(row["product_id"] for row in rows if row.get("product_id"))
    names = _product_names(data / "products.parquet", product_ids)

    orders = [
        OrderRecord(
            order_id=row["order_id"],
            order_time=row["order_time"],
            amount=_money(row.get("amount")),
            is_after_sale=bool(row.get("is_after_sale")),
            units=sum(int(line.get("quantity") or 0) for line in lines.get(row["order_id"], [])),
            products=_unique(
                names.get(line["product_id"], line["product_id"])
                for line in lines.get(row["order_id"], [])
                if line.get("product_id")
            )[:_NAMES_PER_ORDER],
            channel=row.get("channel"),
        )
        for row in orders_list
    ]
    events = [
        EventRecord(
            event_time=row["event_time"],
            event_type=row["event_type"],
            product_id=row.get("product_id"),
            product_name=names.get(row["product_id"]) if row.get("product_id") else None,
            keyword=row.get("keyword"),
        )
        for row in events_list
    ]
    return UserActivity(
        user_id=user_id,
        as_of=as_of,
        since=since,
        orders=orders,
        events=events,
        orders_total=orders_total,
        events_total=events_total,
        missing=missing,
    )


def matching_user_ids(user_ids: Iterable[str], query: str, *, limit: int = 20) -> list[str]:
    """User ids containing ``query`` (case-insensitive), exact matches first, then in id order.

    The console's user search runs this over the served snapshot's ids.
    """
    wanted = query.strip().casefold()
    if not wanted:
        return []
    found = sorted(user_id for user_id in user_ids if wanted in user_id.casefold())
    found.sort(key=lambda user_id: (user_id.casefold() != wanted, not user_id.casefold().startswith(wanted)))
    return found[:limit]


def _window(
    path: Path, user_id: str, time_column: str, start: dt.datetime, end: dt.datetime
) -> pa.Table | None:
    """The user's rows of a table with ``start <= time < end`` (``None`` when the table is absent)."""
    if not path.is_file():
        return None
    dataset = ds.dataset(path, format="parquet")
    unit = dataset.schema.field(time_column).type
    condition = (
        (pc.field("user_id") == user_id)
        & (pc.field(time_column) >= pa.scalar(start, type=unit))
        & (pc.field(time_column) < pa.scalar(end, type=unit))
    )
    return dataset.to_table(filter=condition)


def _newest(table: pa.Table, time_column: str, limit: int) -> pa.Table:
    return table.sort_by([(time_column, "descending")]).slice(0, limit)


def _lines(path: Path, order_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not order_ids or not path.is_file():
        return {}
    dataset = ds.dataset(path, format="parquet")
    columns = [c for c in ("order_id", "line_no", "product_id", "quantity") if c in dataset.schema.names]
    table = dataset.to_table(columns=columns, filter=pc.field("order_id").isin(order_ids))
    found: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        found.setdefault(row["order_id"], []).append(row)
    for rows in found.values():
        rows.sort(key=lambda row: row.get("line_no") or 0)
    return found


def _product_names(path: Path, product_ids: set[str]) -> dict[str, str]:
    if not product_ids or not path.is_file():
        return {}
    dataset = ds.dataset(path, format="parquet")
    if "name" not in dataset.schema.names:
        return {}
    table = dataset.to_table(
        columns=["product_id", "name"], filter=pc.field("product_id").isin(sorted(product_ids))
    )
    return {row["product_id"]: row["name"] for row in table.to_pylist() if row["name"]}


def _require_known(data: Path, user_id: str) -> None:
    """A user with nothing in the window must at least be a known user."""
    path = data / "users.parquet"
    if not path.is_file():
        return
    dataset = ds.dataset(path, format="parquet")
    if dataset.count_rows(filter=pc.field("user_id") == user_id):
        return
    ids = dataset.to_table(columns=["user_id"]).column("user_id").to_pylist()
    folded = {item.casefold(): item for item in ids}
    if user_id.casefold() in folded:
        hint = f" Did you mean '{folded[user_id.casefold()]}'? (user ids are case-sensitive)"
    else:
        hint = did_you_mean(user_id, ids[:20_000]) if len(ids) <= 20_000 else ""
    example = f" User ids look like {min(ids)} … {max(ids)}." if ids else ""
    raise NotFoundError(f"no user '{user_id}' in {path} ({len(ids):,} users).{hint}{example}")


def _money(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
