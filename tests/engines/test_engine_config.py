"""The ``engine:`` section of huaxiang.yaml: which settings belong to which engine (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from huaxiang.config import load_config
from huaxiang.engine.backends import DuckDBEngine, engine_of, open_engine
from huaxiang.errors import ConfigError


def config_file(root: Path, engine: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "huaxiang.yaml").write_text(f"version: 1\nname: shop\nengine:\n{engine}", encoding="utf-8")
    return root


def test_spark_engine_takes_a_master_and_spark_settings(tmp_path: Path) -> None:
    root = config_file(
        tmp_path, "  type: spark\n  conf: {spark.driver.memory: 4g, spark.sql.shuffle.partitions: 8}\n"
    )
    engine = load_config(root).engine
    assert engine.type == "spark"
    assert engine.spark_master == "local[*]"  # all local cores unless master says otherwise
    assert engine.conf == {"spark.driver.memory": "4g", "spark.sql.shuffle.partitions": 8}
    root = config_file(tmp_path / "cluster", "  type: spark\n  master: spark://head:7077\n")
    assert load_config(root).engine.spark_master == "spark://head:7077"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "  type: duckdb\n  master: local[2]\n",
            "huaxiang.yaml:3: engine: engine.master is a Spark setting, but engine.type is duckdb; "
            "set 'type: spark' or remove it.",
        ),
        (
            "  conf: {spark.driver.memory: 4g}\n",
            "huaxiang.yaml:3: engine: engine.conf is a Spark setting, but engine.type is duckdb; "
            "set 'type: spark' or remove it.",
        ),
        (
            "  type: spark\n  memory_limit: 4GB\n",
            "huaxiang.yaml:3: engine: engine.memory_limit is a DuckDB setting; with 'type: spark' give "
            "Spark settings under engine.conf (e.g. spark.driver.memory: 4g).",
        ),
    ],
)
def test_a_setting_of_the_other_engine_is_an_error_saying_where_it_belongs(
    tmp_path: Path, section: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(config_file(tmp_path, section))
    assert str(raised.value) == message


def test_duckdb_is_the_engine_without_a_config(tmp_path: Path) -> None:
    engine, other = open_engine(None, tmp_path), open_engine(None, tmp_path)
    try:
        assert isinstance(engine, DuckDBEngine) and engine.name == "duckdb"
        assert isinstance(engine_of(engine.con), DuckDBEngine)
        assert (tmp_path / ".huaxiang").is_dir()  # DuckDB spills under the workspace
        assert engine.step_name() != other.step_name()  # checkpoints are named per build
    finally:
        engine.close()
        other.close()
