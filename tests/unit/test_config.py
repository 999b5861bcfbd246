"""huaxiang.yaml: a valid file loads; every misconfiguration gives one exact, located message."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from huaxiang.config import CONFIG_FILE, WorkspaceConfig, load_config
from huaxiang.errors import ConfigError

USERS_COLUMNS = (
    "user_id, register_time, gender, birth_date, age, real_name_age, profile_age, age_band, "
    "real_name_city, city, city_tier, country, education, marital_status, child_probability, "
    "member_level, member_score, acquisition_channel, grade_stage, declared_preferences"
)
SOURCE_FIELDS = (
    "into, path, format, connection, table, csv, columns, values, time_format, timezone, "
    "list_separator, reject_if, after_sale_if, time_range, derive"
)


def write(folder: Path, text: str) -> Path:
    path = folder / CONFIG_FILE
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(folder: Path, text: str) -> str:
    write(folder, text)
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    return str(caught.value)


def test_valid_config_loads_with_every_section(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        version: 1
        name: shop
        timezone: Asia/Shanghai
        currency: CNY
        engine: {type: duckdb, threads: 2, memory_limit: 2GB}
        windows: {long_days: 180, recent_days: 7}
        sources:
          users:
            path: raw/users.csv
            into: users
            csv: {delimiter: ";", encoding: gbk, header: true}
            columns: {user_id: uid, gender: sex, age_band: age}
            values:
              gender: {"0": male, "1": female, "2": unknown}
              age_band: {"26-35岁": "26-35", "-1": null}
          lines:
            path: raw/lines.parquet
            into: order_lines
            columns: {order_id: Invoice, user_id: Customer ID}
            after_sale_if: {column: Invoice, prefix: C}
            reject_if:
              - {column: Customer ID, is_null: true, reason: no_customer_id}
              - {column: StockCode, in: [POST, M], reason: non_product_code}
              - {column: StockCode, regex: "^gift_", reason: gift_voucher}
            time_range: {start: 2010-01-01, end: 2012-01-01}
            derive: {users: {country: Country}, products: {name: Description}}
          behaviour:
            path: raw/behaviour.csv
            into: events
            time_format: epoch_s
            timezone: UTC
        """,
    )
    config = load_config(tmp_path)
    assert isinstance(config, WorkspaceConfig)
    assert config.name == "shop"
    assert config.engine.threads == 2
    assert config.windows.recent_days == 7
    assert [p.id for p in config.promo_calendar] == ["mid_year_618", "double_11"]
    users = config.sources["users"]
    assert users.csv.delimiter == ";"
    assert users.csv.encoding == "gbk"
    assert users.resolved_format == "csv"
    assert users.values["age_band"] == {"26-35岁": "26-35", "-1": None}
    lines = config.sources["lines"]
    assert lines.resolved_format == "parquet"
    assert lines.after_sale_if is not None and lines.after_sale_if.prefix == "C"
    assert [rule.reason for rule in lines.reject_if] == ["no_customer_id", "non_product_code", "gift_voucher"]
    assert lines.reject_if[1].in_ == ["POST", "M"]
    assert lines.time_range is not None and lines.time_range.start == date(2010, 1, 1)
    assert lines.derive == {"users": {"country": "Country"}, "products": {"name": "Description"}}
    assert config.sources["behaviour"].timezone == "UTC"


def test_template_written_by_init_is_valid(tmp_path: Path) -> None:
    from huaxiang.workspace import Workspace

    workspace = Workspace.init(tmp_path / "shop")
    assert workspace.config.name == "shop"
    assert workspace.config.sources == {}


def test_misspelt_key_names_file_line_and_the_right_key(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            colums: {user_id: uid}
        """,
    )
    assert message == (
        f"huaxiang.yaml:7: sources.users.colums: unknown field 'colums'. Allowed: {SOURCE_FIELDS}. "
        "Did you mean 'columns'?"
    )


def test_misspelt_nested_and_top_level_keys(tmp_path: Path) -> None:
    nested = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            csv: {delimter: ";"}
        """,
    )
    assert nested == (
        "huaxiang.yaml:7: sources.users.csv.delimter: unknown field 'delimter'. "
        "Allowed: delimiter, header, encoding, quote, column_names, null_values. Did you mean 'delimiter'?"
    )
    top = error_of(tmp_path, "version: 1\nname: shop\nwindws: {long_days: 30}\n")
    assert top == (
        "huaxiang.yaml:3: windws: unknown field 'windws'. Allowed: version, name, timezone, currency, "
        "engine, sources, windows, promo_calendar. Did you mean 'windows'?"
    )


def test_wrong_literal_engine_type(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        engine:
          type: duckdbb
        """,
    )
    assert message == (
        "huaxiang.yaml:4: engine.type: got 'duckdbb'; allowed: 'duckdb' or 'spark'. Did you mean 'duckdb'?"
    )


def test_wrong_version(tmp_path: Path) -> None:
    assert error_of(tmp_path, "version: 2\nname: shop\n") == "huaxiang.yaml:1: version: got 2; allowed: 1."


def test_unknown_target_table(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: user
        """,
    )
    assert message == (
        "huaxiang.yaml:6: sources.users.into: unknown table 'user'; allowed: users, orders, order_items, "
        "events, products, content, touches, order_lines. Did you mean 'users'?"
    )


def test_unknown_canonical_column_points_at_its_own_line(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            columns:
              user_id: uid
              gendr: sex
        """,
    )
    assert message == (
        "huaxiang.yaml:9: sources.users.columns: 'gendr' is not a column of users. "
        f"Did you mean 'gender'? Allowed: {USERS_COLUMNS}."
    )


def test_unknown_canonical_column_in_values_and_derive(tmp_path: Path) -> None:
    values = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            values:
              gendr: {"0": male}
        """,
    )
    assert values == (
        "huaxiang.yaml:8: sources.users.values: 'gendr' is not a column of users. "
        f"Did you mean 'gender'? Allowed: {USERS_COLUMNS}."
    )
    derive = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          behaviour:
            path: events.csv
            into: events
            derive: {user: {}}
        """,
    )
    assert derive == (
        "huaxiang.yaml:7: sources.behaviour.derive: 'user' cannot be derived; allowed: users, products. "
        "Did you mean 'users'?"
    )


def test_unknown_time_zone(tmp_path: Path) -> None:
    message = error_of(tmp_path, "version: 1\nname: shop\ntimezone: Asia/Shanghia\n")
    assert message == (
        "huaxiang.yaml:3: timezone: unknown time zone 'Asia/Shanghia'; "
        "use an IANA name such as Asia/Shanghai."
    )
    source = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            timezone: Mars/Olympus
        """,
    )
    assert source == (
        "huaxiang.yaml:7: sources.users.timezone: unknown time zone 'Mars/Olympus'; "
        "use an IANA name such as Asia/Shanghai."
    )


def test_bad_encoding_name(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            csv:
              encoding: gbkk
        """,
    )
    assert message == (
        "huaxiang.yaml:8: sources.users.csv.encoding: unknown encoding 'gbkk'; "
        "use a Python codec name such as utf-8, gbk, gb18030."
    )


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
           into: users
        """,
    )
    assert message == (
        f"{tmp_path / CONFIG_FILE}:6: invalid YAML: expected <block end>, but found '<block mapping start>'."
    )
    tab = error_of(tmp_path, "version: 1\nname: shop\nsources:\n\tusers: {}\n")
    assert tab == (
        f"{tmp_path / CONFIG_FILE}:4: invalid YAML: found character '\\t' that cannot start any token."
    )


def test_missing_required_into(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
        """,
    )
    assert message == "huaxiang.yaml:4: sources.users.into: this field is required but missing."


def test_missing_name(tmp_path: Path) -> None:
    assert error_of(tmp_path, "version: 1\n") == "huaxiang.yaml:1: name: this field is required but missing."


def test_reject_if_rule_with_two_tests(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            reject_if:
              - {column: uid, prefix: T, reason: test_account}
              - {column: uid, prefix: T, in: [x], reason: test_account}
              - {column: uid, reason: no_test}
        """,
    )
    assert message.splitlines() == [
        "huaxiang.yaml:9: sources.users.reject_if[1]: give exactly one of prefix, in, regex, is_null.",
        "huaxiang.yaml:10: sources.users.reject_if[2]: give exactly one of prefix, in, regex, is_null.",
    ]


def test_reject_if_rule_with_bad_regex_or_reason(tmp_path: Path) -> None:
    regex = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            reject_if: [{column: uid, regex: "(", reason: x}]
        """,
    )
    assert regex == (
        "huaxiang.yaml:7: sources.users.reject_if[0]: invalid regex '(': "
        "missing ), unterminated subpattern at position 0."
    )
    reason = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            reject_if: [{column: uid, prefix: T, reason: Test Account}]
        """,
    )
    assert reason == (
        "huaxiang.yaml:7: sources.users.reject_if[0]: reason must be snake_case, got 'Test Account'."
    )


def test_non_snake_case_source_name_points_at_the_name(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          User-File:
            path: users.csv
            into: users
        """,
    )
    assert message == (
        "huaxiang.yaml:4: sources: source name 'User-File' must be snake_case (letters, digits, _)."
    )


def test_after_sale_if_only_for_orders(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        sources:
          users:
            path: users.csv
            into: users
            after_sale_if: {column: kind, prefix: R}
        """,
    )
    assert message == (
        "huaxiang.yaml:4: sources.users: after_sale_if applies to sources into orders or order_lines."
    )


def test_source_without_path_or_table(tmp_path: Path) -> None:
    message = error_of(tmp_path, "version: 1\nname: shop\nsources:\n  users: {into: users}\n")
    assert message == (
        "huaxiang.yaml:4: sources.users: give 'path' (a CSV or Parquet file) or 'format: table' with 'table'."
    )
    table = error_of(tmp_path, "version: 1\nname: shop\nsources:\n  users: {into: users, format: table}\n")
    assert table == (
        "huaxiang.yaml:4: sources.users: a 'table' source needs 'table' (and optionally 'connection')."
    )
    config = WorkspaceConfig.model_validate(
        {"name": "shop", "sources": {"users": {"into": "users", "table": "crm.users"}}}
    )
    assert config.sources["users"].resolved_format == "table"


def test_bad_currency(tmp_path: Path) -> None:
    message = error_of(tmp_path, "version: 1\nname: shop\ncurrency: rmb\n")
    assert message == "huaxiang.yaml:3: currency: String should match pattern '^[A-Z]{3}$' (got 'rmb')."


def test_several_errors_are_all_reported(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        version: 1
        name: shop
        timezone: Nowhere/City
        engine: {type: flink}
        """,
    )
    assert message.splitlines() == [
        "huaxiang.yaml:3: timezone: unknown time zone 'Nowhere/City'; "
        "use an IANA name such as Asia/Shanghai.",
        "huaxiang.yaml:4: engine.type: got 'flink'; allowed: 'duckdb' or 'spark'.",
    ]


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nowhere")
    assert str(caught.value) == f"{tmp_path / 'nowhere' / CONFIG_FILE}: file not found."


def test_file_not_utf8(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes("version: 1\nname: 商店\n".encode("gbk"))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path / CONFIG_FILE}: not valid UTF-8 at byte 17; save it as UTF-8."


def test_config_error_is_a_value_error_with_http_status() -> None:
    assert issubclass(ConfigError, ValueError)
    assert ConfigError("x").http_status == 400
