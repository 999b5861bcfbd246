"""What recommendations and scene pages read: items, user histories and popularity as of a cutoff.

:func:`load_shop_data` runs a few set-based DuckDB queries over the canonical tables
(``data/*.parquet``) and keeps the answers as NumPy arrays, so that ranking for one
user is array arithmetic over that user's handful of rows (microseconds), not a query.

**Interaction weight** of a user and a product: every event before the cutoff of a
weighted type (``view 1, click 1, share 2, favorite 3, cart 3, purchase 4`` by default)
adds ``weight × 0.5^(age_days / half_life_days)``; a purchase counts once per product
and day, whether it comes from a purchase event or an order line (after-sale records
excluded). **Bought** products are those with a purchase.

**Popularity** of a product: ``views + sales_weight × units`` in the ``popularity_days``
before the cutoff (views are view and click events; units are order-line quantities,
or purchase events when there are no order lines), as ``log(1 + x) / log(1 + max x)`` in
[0, 1]. **Discount depth**: ``1 − paid / (quantity × list price)`` over the order lines of
the ``discount_days`` before the cutoff, clipped to [0, 1]; 0 without lines or list price.

**Co-occurrence**: two products co-occur when one user interacted with both (each user's
``max_history`` strongest products count); similarity is the cosine
``users(i, j) / sqrt(users(i) × users(j))``, and each product keeps its ``neighbours`` most
similar ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from huaxiang.errors import ConfigError, WorkspaceError

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "share": 2.0,
    "favorite": 3.0,
    "cart": 3.0,
    "purchase": 4.0,
}


@dataclass(frozen=True)
class DataSettings:
    """How interactions, popularity, discounts and co-occurrence are measured (see the module doc)."""

    event_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    half_life_days: float = 30.0
    popularity_days: int = 30
    sales_weight: float = 5.0
    discount_days: int = 90
    max_history: int = 50
    neighbours: int = 30

    def check(self) -> None:
        for kind, weight in self.event_weights.items():
            if not weight > 0:
                raise ConfigError(f"event weight of {kind!r} must be positive, got {weight}.")
        if "purchase" not in self.event_weights:
            raise ConfigError("event_weights needs a weight for 'purchase' (bought products are excluded).")
        for name in ("half_life_days", "popularity_days", "discount_days", "max_history", "neighbours"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}.")


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class ShopData:
    """Items, users' histories, popularity and co-occurrence, as arrays (built by :func:`load_shop_data`)."""

    cutoff: dt.datetime
    item_ids: list[str]
    item_names: list[str | None]
    item_price: FloatArray
    #: Codes into :attr:`categories` / :attr:`brands`; -1 when unknown.
    item_category: IntArray
    item_brand: IntArray
    #: Category names at levels 1-3 (for declared preferences and display); None when unknown.
    item_levels: list[tuple[str | None, str | None, str | None]]
    categories: list[str]
    brands: list[str]
    popularity: FloatArray
    recent_views: FloatArray
    recent_units: FloatArray
    discount: FloatArray
    user_rows: dict[str, int]
    history_ptr: IntArray
    history_item: IntArray
    history_weight: FloatArray
    history_bought: npt.NDArray[np.bool_]
    neighbour_ptr: IntArray
    neighbour_item: IntArray
    neighbour_similarity: FloatArray
    declared: dict[str, list[str]]
    by_popularity: IntArray
    category_top: dict[int, IntArray]
    settings: DataSettings
    item_rows: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.item_rows = {item: row for row, item in enumerate(self.item_ids)}

    @property
    def items(self) -> int:
        return len(self.item_ids)

    def history(self, user_id: str) -> tuple[IntArray, FloatArray, npt.NDArray[np.bool_]]:
        """The user's products, interaction weights and bought flags (empty without history)."""
        row = self.user_rows.get(user_id)
        if row is None:
            empty = np.empty(0, np.int64)
            return empty, np.empty(0, np.float64), np.empty(0, np.bool_)
        start, end = self.history_ptr[row], self.history_ptr[row + 1]
        return self.history_item[start:end], self.history_weight[start:end], self.history_bought[start:end]

    def affinities(self, user_id: str) -> tuple[FloatArray, FloatArray]:
        """Category and brand affinity of the user for every product, each in [0, 1].

        A category's (brand's) affinity is the user's interaction weight on it divided by
        the weight on the user's strongest category (brand): 1 for the favourite, 0 for
        one never touched.
        """
        items, weights, _ = self.history(user_id)
        return self._relative(self.item_category, items, weights), self._relative(
            self.item_brand, items, weights
        )

    def _relative(self, codes: IntArray, items: IntArray, weights: FloatArray) -> FloatArray:
        result = np.zeros(self.items, np.float64)
        if len(items) == 0:
            return result
        item_codes = codes[items]
        known = item_codes >= 0
        if not known.any():
            return result
        totals = np.bincount(item_codes[known], weights=weights[known], minlength=int(codes.max()) + 1)
        top = totals.max()
        if top <= 0:
            return result
        share = totals / top
        mask = codes >= 0
        result[mask] = share[codes[mask]]
        return result

    def declared_mask(self, user_id: str) -> npt.NDArray[np.bool_]:
        """Products in a category (any level) the user declared at sign-up."""
        wanted = set(self.declared.get(user_id, ()))
        if not wanted:
            return np.zeros(self.items, np.bool_)
        return np.array([any(level in wanted for level in levels) for levels in self.item_levels], np.bool_)

    def neighbours(self, item: int) -> tuple[IntArray, FloatArray]:
        start, end = self.neighbour_ptr[item], self.neighbour_ptr[item + 1]
        return self.neighbour_item[start:end], self.neighbour_similarity[start:end]

    def item_summary(self, item: int) -> dict[str, Any]:
        """What a page or a recommendation shows of a product."""
        category = int(self.item_category[item])
        brand = int(self.item_brand[item])
        price = float(self.item_price[item])
        return {
            "product_id": self.item_ids[item],
            "name": self.item_names[item],
            "brand": self.brands[brand] if brand >= 0 else None,
            "category": self.categories[category] if category >= 0 else None,
            "price": None if price != price else round(price, 2),
        }


def _table(data_dir: Path, name: str) -> str | None:
    path = data_dir / f"{name}.parquet"
    return str(path).replace("'", "''") if path.is_file() else None


def _columns(con: duckdb.DuckDBPyConnection, path: str) -> set[str]:
    return {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}


def load_shop_data(
    data_dir: str | Path,
    cutoff: dt.datetime,
    *,
    settings: DataSettings | None = None,
    start: dt.datetime | None = None,
) -> ShopData:
    """Measure the canonical tables in ``data_dir`` from events strictly before ``cutoff``.

    Parameters
    ----------
    data_dir
        A workspace's ``data/`` folder (``events.parquet`` is required; ``products``,
        ``orders``, ``order_items`` and ``users`` are used when present).
    cutoff
        Only what happened before this (naive, shop-local) time counts.
    settings
        Weights and windows (:class:`DataSettings`).
    start
        Ignore events before this time too (for evaluation splits).
    """
    settings = settings or DataSettings()
    settings.check()
    folder = Path(data_dir)
    events = _table(folder, "events")
    if events is None:
        raise WorkspaceError(
            f"no events table in {folder}: recommendations need behaviour events. "
            "Ingest them first ('huaxiang ingest -w DIR')."
        )
    con = duckdb.connect()
    try:
        return _load(con, folder, events, cutoff, settings, start)
    finally:
        con.close()


def _load(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    events: str,
    cutoff: dt.datetime,
    settings: DataSettings,
    start: dt.datetime | None,
) -> ShopData:
    con.execute("SET TimeZone = 'UTC'")
    event_columns = _columns(con, events)
    if "product_id" not in event_columns:
        raise WorkspaceError("the events table has no product_id column; recommendations need products.")
    cut = f"TIMESTAMP '{cutoff.isoformat(sep=' ')}'"
    lower = f" AND event_time >= TIMESTAMP '{start.isoformat(sep=' ')}'" if start else ""
    con.execute(
        f"""CREATE TEMP TABLE ev AS SELECT user_id, product_id, event_type, event_time
        FROM read_parquet('{events}')
        WHERE product_id IS NOT NULL AND user_id IS NOT NULL AND event_time < {cut}{lower}"""
    )
    weights = pa.table(
        {
            "event_type": list(settings.event_weights),
            "weight": [float(v) for v in settings.event_weights.values()],
        }
    )
    con.register("weights", weights)
    orders, items = _table(folder, "orders"), _table(folder, "order_items")
    lines = ""
    if orders and items:
        order_columns = _columns(con, orders)
        after_sale = "NOT coalesce(o.is_after_sale, false)" if "is_after_sale" in order_columns else "true"
        order_lower = f" AND o.order_time >= TIMESTAMP '{start.isoformat(sep=' ')}'" if start else ""
        con.execute(
            f"""CREATE TEMP TABLE lines AS
            SELECT o.user_id, i.product_id, o.order_time, i.quantity, i.unit_price,
                   coalesce(i.discount, 0) AS discount
            FROM read_parquet('{items}') i JOIN read_parquet('{orders}') o USING (order_id)
            WHERE {after_sale} AND o.order_time < {cut}{order_lower}
              AND i.product_id IS NOT NULL AND o.user_id IS NOT NULL"""
        )
        lines = "UNION SELECT user_id, product_id, CAST(order_time AS DATE) FROM lines"
    else:
        con.execute(
            "CREATE TEMP TABLE lines (user_id VARCHAR, product_id VARCHAR, order_time TIMESTAMP, "
            "quantity BIGINT, unit_price DECIMAL(18,2), discount DECIMAL(18,2))"
        )
    seconds = f"date_diff('second', event_time, {cut})"
    con.execute(
        f"""CREATE TEMP TABLE inter AS
        WITH bought AS (
            SELECT user_id, product_id, day FROM (
                SELECT DISTINCT user_id, product_id, CAST(event_time AS DATE) AS day FROM ev
                WHERE event_type = 'purchase' {lines})
        ),
        typed AS (
            SELECT user_id, product_id, event_type, event_time FROM ev WHERE event_type <> 'purchase'
            UNION ALL
            SELECT user_id, product_id, 'purchase', CAST(day AS TIMESTAMP) FROM bought
        )
        SELECT t.user_id, t.product_id,
               sum(w.weight * pow(0.5, {seconds} / 86400.0 / {float(settings.half_life_days)})) AS weight,
               bool_or(t.event_type = 'purchase') AS bought
        FROM typed t JOIN weights w USING (event_type)
        GROUP BY 1, 2"""
    )
    products = _table(folder, "products")
    product_columns = _columns(con, products) if products else set()

    def column(name: str, kind: str = "VARCHAR") -> str:
        return f"p.{name}" if name in product_columns else f"CAST(NULL AS {kind})"

    product_source = (
        f"""SELECT product_id, {column("name")} AS name, {column("category_l1")} AS l1,
            {column("category_l2")} AS l2, {column("category_l3")} AS l3, {column("brand")} AS brand,
            CAST({column("price", "DOUBLE")} AS DOUBLE) AS price FROM read_parquet('{products}') p"""
        if products
        else "SELECT NULL::VARCHAR product_id, NULL::VARCHAR name, NULL::VARCHAR l1, NULL::VARCHAR l2, "
        "NULL::VARCHAR l3, NULL::VARCHAR brand, NULL::DOUBLE price WHERE false"
    )
    pop_from = f"TIMESTAMP '{(cutoff - dt.timedelta(days=settings.popularity_days)).isoformat(sep=' ')}'"
    disc_from = f"TIMESTAMP '{(cutoff - dt.timedelta(days=settings.discount_days)).isoformat(sep=' ')}'"
    has_lines = con.sql("SELECT count(*) FROM lines").fetchone() != (0,)
    units = (
        f"SELECT product_id, sum(quantity)::DOUBLE u FROM lines WHERE order_time >= {pop_from} GROUP BY 1"
        if has_lines
        else f"SELECT product_id, count(*)::DOUBLE u FROM ev WHERE event_type = 'purchase' "
        f"AND event_time >= {pop_from} GROUP BY 1"
    )
    item_table = con.sql(
        f"""WITH cat AS ({product_source}),
        seen AS (SELECT DISTINCT product_id FROM ev UNION SELECT DISTINCT product_id FROM lines),
        universe AS (SELECT product_id FROM cat UNION SELECT product_id FROM seen),
        views AS (SELECT product_id, count(*)::DOUBLE v FROM ev
                  WHERE event_type IN ('view', 'click') AND event_time >= {pop_from} GROUP BY 1),
        units AS ({units}),
        paid AS (SELECT l.product_id,
                        sum(l.quantity * l.unit_price - l.discount)::DOUBLE AS paid,
                        sum(l.quantity * c.price)::DOUBLE AS listed
                 FROM lines l JOIN cat c USING (product_id)
                 WHERE l.order_time >= {disc_from} AND c.price > 0 GROUP BY 1)
        SELECT u.product_id, c.name, c.l1, c.l2, c.l3, c.brand, c.price,
               coalesce(views.v, 0) AS views, coalesce(units.u, 0) AS units,
               CASE WHEN paid.listed > 0 THEN greatest(0, least(1, 1 - paid.paid / paid.listed)) ELSE 0 END
                   AS discount
        FROM universe u LEFT JOIN cat c USING (product_id) LEFT JOIN views USING (product_id)
        LEFT JOIN units USING (product_id) LEFT JOIN paid USING (product_id)
        ORDER BY u.product_id"""
    ).to_arrow_table()
    item_ids = [str(v) for v in item_table.column("product_id").to_pylist()]
    l1, l2, l3 = (item_table.column(name).to_pylist() for name in ("l1", "l2", "l3"))
    leaf = [c or b or a for a, b, c in zip(l1, l2, l3, strict=True)]
    categories = sorted({name for name in leaf if name is not None})
    category_code = {name: code for code, name in enumerate(categories)}
    brand_values = item_table.column("brand").to_pylist()
    brands = sorted({name for name in brand_values if name is not None})
    brand_code = {name: code for code, name in enumerate(brands)}
    views = np.asarray(item_table.column("views").to_numpy(), np.float64)
    units_sold = np.asarray(item_table.column("units").to_numpy(), np.float64)
    raw_popularity = views + settings.sales_weight * units_sold
    top = raw_popularity.max() if len(raw_popularity) else 0.0
    popularity = np.log1p(raw_popularity) / np.log1p(top) if top > 0 else np.zeros(len(item_ids))
    item_category = np.array([category_code.get(name, -1) for name in leaf], np.int64)
    by_popularity = np.lexsort((np.arange(len(item_ids)), -popularity)).astype(np.int64)
    category_top: dict[int, IntArray] = {}
    ranked_codes = item_category[by_popularity]
    for code in range(len(categories)):
        category_top[code] = by_popularity[ranked_codes == code][:50]

    # Histories, one CSR row per user (strongest product first).
    con.register(
        "item_codes", pa.table({"product_id": item_ids, "code": pa.array(range(len(item_ids)), pa.int64())})
    )
    user_ids = [str(row[0]) for row in con.sql("SELECT DISTINCT user_id FROM inter ORDER BY 1").fetchall()]
    user_rows = {user: row for row, user in enumerate(user_ids)}
    con.register(
        "user_codes", pa.table({"user_id": user_ids, "user_code": pa.array(range(len(user_ids)), pa.int64())})
    )
    history = con.sql(
        """SELECT u.user_code, c.code, i.weight, i.bought
        FROM inter i JOIN item_codes c USING (product_id) JOIN user_codes u USING (user_id)
        ORDER BY u.user_code, i.weight DESC, c.code"""
    ).to_arrow_table()
    history_user = np.asarray(history.column("user_code").to_numpy(), np.int64)
    history_item = np.asarray(history.column("code").to_numpy(), np.int64)
    history_weight = np.asarray(history.column("weight").to_numpy(), np.float64)
    pointers = np.concatenate([[0], np.cumsum(np.bincount(history_user, minlength=len(user_ids)))]).astype(
        np.int64
    )
    neighbour_ptr, neighbour_item, neighbour_similarity = _cooccurrence(
        history_user, history_item, pointers, len(user_ids), len(item_ids), settings
    )

    declared: dict[str, list[str]] = {}
    users = _table(folder, "users")
    if users and "declared_preferences" in _columns(con, users):
        for user, wanted in con.sql(
            f"SELECT user_id, declared_preferences FROM read_parquet('{users}') "
            "WHERE len(declared_preferences) > 0"
        ).fetchall():
            declared[str(user)] = [str(v) for v in wanted if v]

    price = item_table.column("price").to_numpy(zero_copy_only=False)
    return ShopData(
        cutoff=cutoff,
        item_ids=item_ids,
        item_names=item_table.column("name").to_pylist(),
        item_price=np.asarray(price, np.float64),
        item_category=item_category,
        item_brand=np.array([brand_code.get(name, -1) for name in brand_values], np.int64),
        item_levels=list(zip(l1, l2, l3, strict=True)),
        categories=categories,
        brands=brands,
        popularity=popularity,
        recent_views=views,
        recent_units=units_sold,
        discount=np.asarray(item_table.column("discount").to_numpy(), np.float64),
        user_rows=user_rows,
        history_ptr=pointers,
        history_item=history_item,
        history_weight=history_weight,
        history_bought=np.asarray(history.column("bought").to_numpy(zero_copy_only=False), np.bool_),
        neighbour_ptr=neighbour_ptr,
        neighbour_item=neighbour_item,
        neighbour_similarity=neighbour_similarity,
        declared=declared,
        by_popularity=by_popularity,
        category_top=category_top,
        settings=settings,
    )


def _cooccurrence(
    users: IntArray, items: IntArray, pointers: IntArray, n_users: int, n_items: int, settings: DataSettings
) -> tuple[IntArray, IntArray, FloatArray]:
    """Each product's most similar products (cosine over users), as CSR arrays.

    ``users`` / ``items`` are the histories sorted by user, strongest product first, so each
    user's first ``max_history`` rows are the ones that count. The counts are ``XᵀX`` of the
    sparse user × product matrix: far cheaper than a self-join of the histories.
    """
    from scipy import sparse

    rank = np.arange(len(users)) - pointers[users]
    keep = rank < settings.max_history
    matrix = sparse.csr_matrix(
        (np.ones(int(keep.sum()), np.float64), (users[keep], items[keep])), shape=(n_users, n_items)
    )
    counts = (matrix.T @ matrix).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    counts.sort_indices()
    users_per_item = np.asarray(matrix.sum(axis=0), np.float64).ravel()
    rows = np.repeat(np.arange(n_items), np.diff(counts.indptr))
    similarity = counts.data / np.sqrt(users_per_item[rows] * users_per_item[counts.indices])
    limit = settings.neighbours
    pointer = np.zeros(n_items + 1, np.int64)
    chosen_items: list[IntArray] = []
    chosen_similarity: list[FloatArray] = []
    for item in range(n_items):
        start, end = counts.indptr[item], counts.indptr[item + 1]
        if start == end:
            pointer[item + 1] = pointer[item]
            continue
        columns = counts.indices[start:end].astype(np.int64)
        values = similarity[start:end]
        order = np.lexsort((columns, -values))[:limit]  # most similar first, ties by product
        chosen_items.append(columns[order])
        chosen_similarity.append(values[order])
        pointer[item + 1] = pointer[item] + len(order)
    if not chosen_items:
        return pointer, np.empty(0, np.int64), np.empty(0, np.float64)
    return pointer, np.concatenate(chosen_items), np.concatenate(chosen_similarity)
