"""The sample shop generator: determinism, the canonical schema and the planted structure."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.datasets.sample import OUTPUT_TABLES, SampleSummary, generate_sample
from huaxiang.model.schema import (
    AGE_BANDS,
    CONTENT_KINDS,
    EDUCATION,
    EVENT_TYPES,
    GENDERS,
    MARITAL,
    TABLES,
)

USERS = 2000
SEED = 7
END = dt.date(2026, 10, 31)
# Written independently of the generator's own mapping, so a change there is caught.
EXPECTED_ARROW_TYPES = {
    "string": pa.string(),
    "enum": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": pa.decimal128(18, 2),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "list": pa.list_(pa.string()),
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate_sample(out, users=USERS, seed=SEED, end=END)


@pytest.fixture(scope="module")
def db(sample: tuple[Path, SampleSummary]) -> Iterator[duckdb.DuckDBPyConnection]:
    out, _ = sample
    con = duckdb.connect()
    for name in OUTPUT_TABLES:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out / name}.parquet')")
    yield con
    con.close()


@pytest.fixture(scope="module")
def planted(sample: tuple[Path, SampleSummary]) -> dict[str, Any]:
    out, _ = sample
    description: dict[str, Any] = json.loads((out / "planted.json").read_text(encoding="utf-8"))
    return description


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


# --- files, determinism ------------------------------------------------------------------


def test_writes_every_file_and_reports_rows(sample: tuple[Path, SampleSummary]) -> None:
    out, summary = sample
    for name in OUTPUT_TABLES:
        assert pq.ParquetFile(out / f"{name}.parquet").metadata.num_rows == summary.rows[name]
    assert (out / "planted.json").is_file()
    assert summary.users == summary.truth == USERS
    assert summary.elapsed_seconds > 0


def test_same_seed_gives_identical_bytes_other_seed_differs(
    sample: tuple[Path, SampleSummary], tmp_path: Path
) -> None:
    out, _ = sample
    again = tmp_path / "again"
    other = tmp_path / "other"
    generate_sample(again, users=USERS, seed=SEED, end=END)
    generate_sample(other, users=USERS, seed=SEED + 1, end=END)
    for name in [f"{t}.parquet" for t in OUTPUT_TABLES] + ["planted.json"]:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    for name in ("users", "orders", "events", "truth"):
        assert (out / f"{name}.parquet").read_bytes() != (other / f"{name}.parquet").read_bytes()


def test_progress_is_reported_per_chunk(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    generate_sample(tmp_path, users=300, progress=lambda *args: calls.append(args))
    assert calls[0] == ("catalog", 1, 1)
    assert ("users", 300, 300) in calls
    assert calls[-1] == ("planted", 1, 1)


def test_chunks_continue_ids_and_stay_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("huaxiang.datasets.sample.generate.CHUNK_USERS", 400)
    calls: list[tuple[str, int, int]] = []
    generate_sample(tmp_path / "a", users=1000, progress=lambda *args: calls.append(args))
    generate_sample(tmp_path / "b", users=1000)
    assert [c for c in calls if c[0] == "users"] == [
        ("users", 400, 1000), ("users", 800, 1000), ("users", 1000, 1000)]
    con = duckdb.connect()
    users = con.execute(f"SELECT min(user_id), max(user_id), count(DISTINCT user_id) "
                        f"FROM '{tmp_path}/a/users.parquet'").fetchone()
    assert users == ("U00000001", "U00001000", 1000)
    orders = con.execute(f"SELECT min(order_id), max(order_id), count(DISTINCT order_id), "
                         f"count(*) FROM '{tmp_path}/a/orders.parquet'").fetchone()
    assert orders is not None
    assert orders[0] == "O0000000001" and orders[1] == f"O{orders[3]:010d}" == f"O{orders[2]:010d}"
    assert pq.ParquetFile(tmp_path / "a" / "events.parquet").num_row_groups >= 3
    for name in OUTPUT_TABLES:
        a = (tmp_path / "a" / f"{name}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{name}.parquet").read_bytes(), name


# --- schema ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TABLES))
def test_schema_matches_the_canonical_model(
    sample: tuple[Path, SampleSummary], name: str
) -> None:
    out, _ = sample
    schema = pq.read_schema(out / f"{name}.parquet")
    expected = [(c.name, EXPECTED_ARROW_TYPES[c.kind]) for c in TABLES[name].columns]
    assert [(f.name, f.type) for f in schema] == expected


def test_enums_use_the_schema_values(db: duckdb.DuckDBPyConnection) -> None:
    checks = {
        ("events", "event_type"): EVENT_TYPES,
        ("users", "gender"): GENDERS,
        ("users", "education"): EDUCATION,
        ("users", "marital_status"): MARITAL,
        ("users", "age_band"): AGE_BANDS,
        ("content", "kind"): CONTENT_KINDS,
    }
    for (table, column), allowed in checks.items():
        values = {r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()}
        assert values - {None} <= set(allowed), (table, column, values)
    used = {r[0] for r in db.execute("SELECT DISTINCT event_type FROM events").fetchall()}
    assert used == set(EVENT_TYPES)


def test_keys_are_unique_and_references_resolve(db: duckdb.DuckDBPyConnection) -> None:
    assert scalar(db, "SELECT count(*) - count(DISTINCT user_id) FROM users") == 0
    assert scalar(db, "SELECT count(*) - count(DISTINCT order_id) FROM orders") == 0
    assert scalar(db, "SELECT count(*) - count(DISTINCT product_id) FROM products") == 0
    assert scalar(db, "SELECT count(*) - count(DISTINCT (order_id, line_no)) FROM order_items") == 0
    assert scalar(db, "SELECT count(*) FROM order_items ANTI JOIN orders USING (order_id)") == 0
    assert scalar(db, "SELECT count(*) FROM orders ANTI JOIN users USING (user_id)") == 0
    assert scalar(db, """SELECT count(*) FROM events e WHERE product_id IS NOT NULL
                         AND product_id NOT IN (SELECT product_id FROM products)""") == 0
    assert scalar(db, """SELECT count(*) FROM events WHERE content_id IS NOT NULL
                         AND content_id NOT IN (SELECT content_id FROM content)""") == 0
    assert scalar(db, """SELECT count(*) FROM (SELECT unnest(product_ids) p FROM content)
                         WHERE p NOT IN (SELECT product_id FROM products)""") == 0
    # Lines are numbered 1..n within each order.
    assert scalar(db, """SELECT count(*) FROM (
                            SELECT order_id, max(line_no) m, count(*) n, min(line_no) lo
                            FROM order_items GROUP BY 1)
                         WHERE m <> n OR lo <> 1""") == 0


def test_order_amount_is_the_sum_of_its_lines(db: duckdb.DuckDBPyConnection) -> None:
    mismatched = scalar(db, """
        SELECT count(*) FROM orders o JOIN (
            SELECT order_id, sum(quantity * unit_price - discount) AS total
            FROM order_items GROUP BY 1) i USING (order_id)
        WHERE o.amount > 0 AND o.amount <> i.total""")
    assert mismatched == 0
    assert scalar(db, """SELECT count(*) FROM orders WHERE is_after_sale
                         AND refund_amount IS DISTINCT FROM amount""") == 0
    assert scalar(db, "SELECT count(*) FROM orders WHERE NOT is_after_sale "
                      "AND refund_amount IS NOT NULL") == 0
    assert scalar(db, "SELECT count(*) FROM orders WHERE coupon_used <> "
                      "(coupon_amount IS NOT NULL)") == 0
    after_sale_share = scalar(db, "SELECT avg(is_after_sale::int) FROM orders")
    assert 0.03 < after_sale_share < 0.08


def test_timestamps_stay_in_the_window(db: duckdb.DuckDBPyConnection) -> None:
    end = END + dt.timedelta(days=1)
    for table, column in (("orders", "order_time"), ("events", "event_time"),
                          ("touches", "touch_time"), ("users", "register_time")):
        latest = scalar(db, f"SELECT max({column}) FROM {table}")
        assert latest < dt.datetime(end.year, end.month, end.day), (table, latest)
    first_activity_before_sign_up = scalar(db, """
        SELECT count(*) FROM users u JOIN (
            SELECT user_id, min(t) AS first FROM (
                SELECT user_id, event_time t FROM events UNION ALL
                SELECT user_id, order_time FROM orders) GROUP BY 1) a USING (user_id)
        WHERE a.first <= u.register_time""")
    assert first_activity_before_sign_up == 0


def test_users_have_realistic_gaps_to_impute(db: duckdb.DuckDBPyConnection) -> None:
    no_age = scalar(db, "SELECT avg((real_name_age IS NULL AND profile_age IS NULL)::int) "
                        "FROM users")
    assert 0.01 < no_age < 0.1
    assert scalar(db, "SELECT count(*) FROM users WHERE birth_date IS NOT NULL") == 0
    no_city = scalar(db, "SELECT avg((city IS NULL)::int) FROM users")
    assert 0.03 < no_city < 0.2
    assert scalar(db, "SELECT count(DISTINCT city_tier) FROM users") == 6
    students = db.execute("""SELECT t.persona = 'student', count(grade_stage)
                             FROM users JOIN truth t USING (user_id) GROUP BY 1""").fetchall()
    counts = dict(students)
    assert counts[False] == 0 and counts[True] > 0
    assert scalar(db, "SELECT count(*) FROM users WHERE declared_preferences IS NOT NULL") > 0


# --- planted structure -------------------------------------------------------------------


def test_lifecycles_are_planted_as_documented(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute("""
        WITH activity AS (
            SELECT user_id, event_time AS t FROM events WHERE user_id IS NOT NULL
            UNION ALL SELECT user_id, order_time FROM orders),
        per_user AS (
            SELECT t.user_id, t.planted_lifecycle AS stage, t.churn_date, t.silent_since,
                (SELECT count(*) FROM orders o WHERE o.user_id = t.user_id) AS n_orders,
                (SELECT max(order_time) FROM orders o WHERE o.user_id = t.user_id) AS last_order,
                (SELECT max(a.t) FROM activity a WHERE a.user_id = t.user_id) AS last_active
            FROM truth t)
        SELECT stage,
            count(*) FILTER (WHERE stage = 'churned' AND last_active >= churn_date),
            count(*) FILTER (WHERE stage = 'silent' AND last_active >= silent_since),
            count(*) FILTER (WHERE stage IN ('potential', 'high_potential') AND n_orders > 0),
            count(*) FILTER (WHERE stage = 'new' AND n_orders <> 1),
            count(*) FILTER (WHERE stage IN ('active', 'silent') AND n_orders < 2),
            count(*) FILTER (WHERE stage = 'active'
                             AND last_order < DATE '2026-10-31' - INTERVAL 60 DAY),
            count(*) FILTER (WHERE stage = 'high_potential'
                             AND last_active < DATE '2026-10-31' - INTERVAL 30 DAY),
            count(*) FILTER (WHERE stage = 'potential'
                             AND last_active >= DATE '2026-10-31' - INTERVAL 30 DAY),
            count(*) FILTER (WHERE stage = 'churned' AND churn_date IS NULL)
        FROM per_user GROUP BY 1""").fetchall()
    assert {r[0] for r in rows} == {"potential", "high_potential", "new", "active", "silent",
                                    "churned"}
    for stage, *violations in rows:
        assert violations == [0] * len(violations), stage


def test_recommended_thresholds_recover_every_planted_lifecycle(
    db: duckdb.DuckDBPyConnection, planted: dict[str, Any]
) -> None:
    thresholds = planted["lifecycle"]["recommended_thresholds"]
    mismatches = db.execute(f"""
        WITH activity AS (
            SELECT user_id, event_time AS t FROM events WHERE user_id IS NOT NULL
            UNION ALL SELECT user_id, order_time FROM orders),
        last_seen AS (SELECT user_id, max(t) AS t FROM activity GROUP BY 1),
        n_orders AS (SELECT user_id, count(*) AS n FROM orders GROUP BY 1),
        measured AS (
            SELECT u.user_id, coalesce(o.n, 0) AS n,
                date_diff('day', coalesce(l.t, u.register_time)::date, DATE '{END}') AS d
            FROM users u LEFT JOIN last_seen l USING (user_id) LEFT JOIN n_orders o USING (user_id))
        SELECT t.planted_lifecycle, CASE
                WHEN n = 0 AND d <= {thresholds["high_potential_days"]} THEN 'high_potential'
                WHEN n = 0 THEN 'potential'
                WHEN d >= {thresholds["churn_days"]} THEN 'churned'
                WHEN d >= {thresholds["silent_days"]} THEN 'silent'
                WHEN n = 1 THEN 'new'
                ELSE 'active' END AS recovered, count(*)
        FROM measured JOIN truth t USING (user_id)
        GROUP BY ALL HAVING recovered <> t.planted_lifecycle""").fetchall()
    assert mismatches == []


def test_outing_lovers_act_on_outing_products(db: duckdb.DuckDBPyConnection) -> None:
    shares = dict(db.execute("""
        SELECT t.outing_lover, avg(list_contains(p.scene_tags, 'outing')::int)
        FROM events e JOIN products p USING (product_id) JOIN truth t USING (user_id)
        WHERE e.event_type IN ('view', 'favorite', 'cart')
        GROUP BY 1""").fetchall())
    assert shares[True] > 3 * shares[False]
    seasonal = dict(db.execute("""
        SELECT month(event_time) IN (4, 5, 9, 10) AS peak, count(*)
        FROM events e JOIN products p USING (product_id) JOIN truth t USING (user_id)
        WHERE t.outing_lover AND list_contains(p.scene_tags, 'outing')
          AND month(event_time) IN (4, 5, 9, 10, 12, 1, 2, 3)
        GROUP BY 1""").fetchall())
    assert seasonal[True] > 2 * seasonal[False]  # four peak months vs four cold months


def test_promo_sensitive_users_buy_in_promo_windows(
    db: duckdb.DuckDBPyConnection, planted: dict[str, Any]
) -> None:
    windows = " OR ".join(
        f"order_time::date BETWEEN DATE '{w['first_day']}' AND DATE '{w['last_day']}'"
        for w in planted["promo_calendar"]
    )
    shares = dict(db.execute(f"""
        SELECT t.promo_sensitive, avg(({windows})::int)
        FROM orders o JOIN truth t USING (user_id) GROUP BY 1""").fetchall())
    assert shares[True] > 0.5
    assert shares[False] < 0.25


def test_purchase_cycles_differ_by_category(db: duckdb.DuckDBPyConnection) -> None:
    medians = dict(db.execute("""
        WITH bought AS (
            SELECT DISTINCT o.user_id, p.category_l1 AS l1, o.order_time
            FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (product_id)
            WHERE p.category_l1 IN ('生鲜', '3C数码')),
        gaps AS (
            SELECT l1, date_diff('day', lag(order_time) OVER (
                PARTITION BY user_id, l1 ORDER BY order_time), order_time) AS gap FROM bought)
        SELECT l1, median(gap) FROM gaps WHERE gap IS NOT NULL GROUP BY 1""").fetchall())
    assert medians["3C数码"] > 4 * medians["生鲜"]


def test_big_spenders_spend_more_and_score_higher(db: duckdb.DuckDBPyConnection) -> None:
    spend = dict(db.execute("""
        SELECT t.big_spender, avg(coalesce(s.total, 0)) FROM truth t LEFT JOIN (
            SELECT user_id, sum(amount) total FROM orders WHERE NOT is_after_sale GROUP BY 1
        ) s USING (user_id) GROUP BY 1""").fetchall())
    assert spend[True] > 2 * spend[False]
    correlation = scalar(db, """
        SELECT corr(u.member_score, ln(1 + coalesce(s.total, 0)::double)) FROM users u LEFT JOIN (
            SELECT user_id, sum(amount) total FROM orders WHERE NOT is_after_sale GROUP BY 1
        ) s USING (user_id)""")
    assert correlation > 0.5
    assert scalar(db, "SELECT min(member_level) FROM users") >= 1
    assert scalar(db, "SELECT max(member_level) FROM users") <= 5


def test_campaign_touches_and_counts(
    db: duckdb.DuckDBPyConnection, planted: dict[str, Any]
) -> None:
    campaign = planted["campaign"]
    assert {r[0] for r in db.execute("SELECT DISTINCT variant FROM touches").fetchall()} == {
        "treatment", "control"}
    assert scalar(db, "SELECT count(DISTINCT campaign_id) FROM touches") == 1
    assert scalar(db, "SELECT any_value(campaign_id) FROM touches") == campaign["campaign_id"]
    assert scalar(db, "SELECT count(*) FROM touches WHERE variant = 'control' "
                      "AND (opened IS NOT NULL OR used IS NOT NULL)") == 0
    observed = dict(db.execute("""
        SELECT variant, count(DISTINCT t.user_id) FILTER (WHERE o.order_id IS NOT NULL)
        FROM touches t LEFT JOIN orders o ON o.user_id = t.user_id
            AND NOT o.is_after_sale AND o.amount > 0
            AND o.order_time >= t.touch_time
            AND o.order_time < t.touch_time + INTERVAL 7 DAY
        GROUP BY 1""").fetchall())
    for variant in ("treatment", "control"):
        assert observed[variant] == campaign["observed"]["all"][variant]["converted"]
    assert campaign["planted_effect"]["absolute_uplift"] > 0
    assert scalar(db, "SELECT count(*) FROM truth WHERE campaign_uplift_order") == campaign[
        "uplift_orders"]


def test_dirty_rows_match_planted_counts(
    db: duckdb.DuckDBPyConnection, planted: dict[str, Any]
) -> None:
    dirty = planted["dirty"]
    duplicates = scalar(db, """SELECT coalesce(sum(n - 1), 0) FROM (
        SELECT count(*) n FROM events GROUP BY ALL HAVING count(*) > 1)""".replace(
        "GROUP BY ALL",
        "GROUP BY user_id, event_time, event_type, product_id, keyword, content_id, is_orphan"))
    assert duplicates == dirty["duplicate_events"] > 0
    assert scalar(db, "SELECT count(*) FROM events WHERE user_id IS NULL") == dirty[
        "null_user_events"] > 0
    assert scalar(db, "SELECT count(*) FROM orders WHERE amount <= 0 AND NOT is_after_sale") == (
        dirty["nonpositive_orders"]) > 0
    total_events = scalar(db, "SELECT count(*) FROM events")
    assert dirty["duplicate_events"] < 0.001 * total_events


def test_clean_sample_has_no_dirty_rows(tmp_path: Path) -> None:
    generate_sample(tmp_path, users=500, dirty=False)
    planted = json.loads((tmp_path / "planted.json").read_text(encoding="utf-8"))
    assert [planted["dirty"][k] for k in ("duplicate_events", "null_user_events",
                                          "nonpositive_orders")] == [0, 0, 0]
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{tmp_path}/events.parquet' "
                       "WHERE user_id IS NULL").fetchone() == (0,)
    assert con.execute(f"SELECT count(*) FROM '{tmp_path}/orders.parquet' "
                       "WHERE amount <= 0").fetchone() == (0,)


def test_planted_json_describes_the_files(
    sample: tuple[Path, SampleSummary], planted: dict[str, Any], db: duckdb.DuckDBPyConnection
) -> None:
    _, summary = sample
    assert planted["rows"] == summary.rows
    assert planted["scenes"]["outing"] == "郊游"
    assert sum(p["users"] for p in planted["personas"].values()) == USERS
    truth_personas = dict(db.execute("SELECT persona, count(*) FROM truth GROUP BY 1").fetchall())
    assert truth_personas == {k: v["users"] for k, v in planted["personas"].items() if v["users"]}
    stages = dict(db.execute(
        "SELECT planted_lifecycle, count(*) FROM truth GROUP BY 1").fetchall())
    assert stages == {k: v["users"] for k, v in planted["lifecycle"]["stages"].items()}
    assert [w["name"] for w in planted["promo_calendar"]] == [
        "double11_2024", "618_2025", "double11_2025", "618_2026"]
    dyson = planted["examples"]["dyson_hair_dryers"]
    assert dyson and scalar(db, f"SELECT min(price) FROM products WHERE product_id IN "
                                f"({', '.join(repr(p) for p in dyson)})") > 1000


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="users must be at least 1"):
        generate_sample(tmp_path, users=0)
    with pytest.raises(ValueError, match="years must be at least 1"):
        generate_sample(tmp_path, users=10, years=0)
