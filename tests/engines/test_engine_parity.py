"""The shared engine suite: the standard catalog on DuckDB and on Spark gives the same snapshot.

Every test takes the ``engine`` fixture (duckdb, spark; conftest.py) or compares an
engine with DuckDB, on the sample shop and on slices of the three real-data examples.
"Same" is exact: every tag of every user, floats to the bit. The catalog keeps money
DECIMAL, sums scores in integer units and breaks ranking ties by ``user_id`` precisely
so that no tolerance is needed (docs/scale.md); a difference here is a bug to fix in the
expression, not a threshold to loosen.

One exception, :data:`POW_RELATIVE`: scene probabilities are ``1 - 0.5 ** (score /
half_score)``. Spark evaluates ``POWER`` with Java's ``Math.pow``, DuckDB with the C
library's ``pow``; neither is correctly rounded, so the same inputs can give results one
or two units apart in the last place (measured on the sample shop: 1.1e-16 relative).
Their inputs (the scores) are exact integer sums, so the tolerance covers that last step
only: 1e-12 relative, ten thousand times the observed difference and far below any
threshold a scene flag uses (the flags themselves are compared exactly).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_suite import DATASETS, EXAMPLES, engine_section, on_engine

from huaxiang.audience.index import INDEX_DIR
from huaxiang.catalog import load_catalog
from huaxiang.engine import MODEL_MAKERS, BuildResult, ModelContext, ModelOutput, build, model_maker
from huaxiang.engine.backends import EngineCapabilityError

Built = Callable[[str, str], BuildResult]
#: Relative difference allowed for tags computed through POWER (the module doc says why).
POW_RELATIVE = 1e-12

#: The real-data sets read ../shared/data: integration tests, like tests/integration.
DATASET_PARAMS = [
    pytest.param(name, marks=[pytest.mark.integration] if name in EXAMPLES else []) for name in DATASETS
]


def differences(
    reference: pa.Table, other: pa.Table, *, close: frozenset[str] = frozenset(), show: int = 3
) -> dict[str, Any]:
    """What differs between two tag tables: schema, users, and per column the first differing users.

    Columns in ``close`` are floats compared to :data:`POW_RELATIVE`; all others exactly.
    """
    found: dict[str, Any] = {}
    if reference.schema != other.schema:
        found["schema"] = {
            name: (
                str(reference.schema.field(name).type) if name in reference.column_names else None,
                str(other.schema.field(name).type) if name in other.column_names else None,
            )
            for name in dict.fromkeys(reference.column_names + other.column_names)
            if name not in reference.column_names
            or name not in other.column_names
            or reference.schema.field(name).type != other.schema.field(name).type
        }
        return found
    reference = reference.sort_by("user_id")
    other = other.sort_by("user_id")
    if reference.column("user_id") != other.column("user_id"):
        found["user_id"] = "the two snapshots hold different users"
        return found
    users = reference.column("user_id").to_pylist()
    for name in reference.column_names:
        left, right = reference.column(name).to_pylist(), other.column(name).to_pylist()

        def same(a: Any, b: Any, tolerant: bool = name in close) -> bool:
            if tolerant and isinstance(a, float) and isinstance(b, float):
                return math.isclose(a, b, rel_tol=POW_RELATIVE, abs_tol=0.0)
            return bool(a == b)

        if left != right:
            pairs = enumerate(zip(left, right, strict=True))
            rows = [(users[i], a, b) for i, (a, b) in pairs if not same(a, b)]
        else:
            rows = []
        if rows:
            found[name] = {"users": len(rows), "first": rows[:show]}
    return found


@pytest.mark.parametrize("dataset", DATASET_PARAMS)
def test_standard_catalog_builds_and_publishes_on_each_engine(
    built: Built, engine: str, dataset: str
) -> None:
    result = built(dataset, engine)
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"] == engine
    tags = pq.read_table(result.path / "tags.parquet")
    assert tags.num_rows == result.rows == manifest["rows"]["users"] > 0
    assert tags.column_names == ["user_id", *result.built]
    assert result.built, result.skipped
    assert (result.path / INDEX_DIR).is_dir()
    for tag, reason in result.skipped.items():  # only missing inputs, never an engine problem
        assert reason.startswith(("missing input", "depends on skipped tag", "no scene")), (tag, reason)


@pytest.mark.parametrize("dataset", DATASET_PARAMS)
def test_spark_snapshot_is_identical_to_duckdb(built: Built, spark_session: Any, dataset: str) -> None:
    reference, spark = built(dataset, "duckdb"), built(dataset, "spark")
    assert spark.built == reference.built
    assert spark.skipped == reference.skipped
    catalog = load_catalog(reference.path.parents[1] / "tags")
    through_pow = frozenset(
        [tag.id for tag in catalog if tag.scene is not None and tag.type == "probability"]
        + [
            tag_id
            for tag_id, made in reference.manifest["generated"].items()
            if made["type"] == "probability"
        ]
    )
    found = differences(
        pq.read_table(reference.path / "tags.parquet"),
        pq.read_table(spark.path / "tags.parquet"),
        close=through_pow,
    )
    assert found == {}
    # Coverage and distributions, fitted models and thresholds, template tags: the same too.
    same = ("rows", "empty_columns", "tags", "skipped", "partial", "models", "generated", "definitions")
    assert {key: spark.manifest.get(key) for key in same} == {
        key: reference.manifest.get(key) for key in same
    }


def test_differences_reports_the_users_of_a_changed_value() -> None:
    """The comparison itself can fail: a last-bit change of one float is reported with its user."""
    left = pa.table({"user_id": ["u1", "u2"], "score": [0.1 + 0.2, 0.5]})
    right = pa.table({"user_id": ["u2", "u1"], "score": [0.5, 0.3]})
    assert differences(left, right) == {"score": {"users": 1, "first": [("u1", 0.30000000000000004, 0.3)]}}
    assert differences(left, left.cast(pa.schema([("user_id", pa.string()), ("score", pa.float32())]))) == {
        "schema": {"score": ("double", "float")}
    }
    # Tags through POWER may differ in the last bit, not more.
    one_ulp = pa.table({"user_id": ["u1", "u2"], "score": [math.nextafter(0.1 + 0.2, 1.0), 0.5]})
    assert differences(left, one_ulp, close=frozenset({"score"})) == {}
    assert differences(left, one_ulp) != {}
    further = pa.table({"user_id": ["u1", "u2"], "score": [0.1 + 0.2 + 1e-9, 0.5]})
    assert differences(left, further, close=frozenset({"score"}))["score"]["users"] == 1


# ------------------------------------------------------------------ capability errors


def _kurtosis_maker(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    orders = context.tables["orders"]
    spread = orders.group_by("user_id").aggregate(order_kurtosis=orders.amount.cast("float64").kurtosis())
    users = context.tables["users"].select("user_id")
    return ModelOutput(users.left_join(spread, "user_id").select("user_id", "order_kurtosis"))


@pytest.fixture
def kurtosis_maker() -> Any:
    maker = model_maker("test_order_kurtosis", needs=("orders.amount",))(_kurtosis_maker)
    yield maker
    MODEL_MAKERS.pop("test_order_kurtosis")


def test_an_operation_spark_lacks_is_a_named_capability_error(
    prepared: Callable[[str], tuple[Path, dt.date]], tmp_path: Path, engine: str, kurtosis_maker: Any
) -> None:
    """Kurtosis has no Spark translation in Ibis 12: Spark refuses it by name, DuckDB computes it."""
    source, as_of = prepared("sample")
    root = on_engine(source, tmp_path / "ws", engine)
    for path in (root / "tags").glob("*.yaml"):
        path.unlink()
    (root / "tags" / "spread.yaml").write_text(
        "- id: order_kurtosis\n  type: number\n  category: custom\n  name_zh: 订单金额峰度\n"
        "  name_en: Order amount kurtosis\n  model: {name: test_order_kurtosis}\n",
        encoding="utf-8",
    )
    catalog = load_catalog(root / "tags")
    if engine == "duckdb":
        result = build(root, as_of, catalog=catalog)
        assert result.built == ["order_kurtosis"]
        return
    with pytest.raises(EngineCapabilityError) as raised:
        build(root, as_of, catalog=catalog)
    assert str(raised.value) == (
        "engine spark cannot run Kurtosis (used by order_kurtosis); build these tags on DuckDB "
        "(engine: {type: duckdb}) or change their definition (docs/scale.md, known gaps)."
    )
    assert not (root / "snapshots").exists()  # nothing published


def test_engine_section_of_the_tests_is_a_valid_workspace_setting(engine: str) -> None:
    from huaxiang.config import EngineConfig

    config = EngineConfig.model_validate(engine_section(engine))
    assert config.type == engine
    assert ibis.__version__.startswith("12.")
