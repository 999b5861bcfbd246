"""Fixtures of the shared engine suite: the engines, one Spark session per run, the workspaces.

Every workspace is made once (the sample shop, and small slices of the three real-data
examples), then copied once per engine with that engine in its ``huaxiang.yaml`` and
built with the standard catalog: a test reads the :class:`~huaxiang.engine.BuildResult`
of ``(dataset, engine)``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from huaxiang.engine import BuildResult, build
from huaxiang.engine.backends import spark_available
from huaxiang.workspace import Workspace, install_standard_catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from engine_suite import (  # noqa: E402
    ENGINES,
    EXAMPLES,
    PANDAS_WARNING,
    SAMPLE_AS_OF,
    SLICE_USERS,
    SPARK_CONF,
    on_engine,
    slice_users,
)
from realdata import SHARED_DATA, ingest_example  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.filterwarnings(PANDAS_WARNING))


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """The run's Spark session (``local[2]``); the Spark tests skip, saying how to install, without it."""
    missing = spark_available()
    if missing is not None:
        if os.environ.get("HUAXIANG_REQUIRE_SPARK"):  # CI (.ci/run): Spark must be tested, not skipped
            pytest.fail(missing)
        pytest.skip(missing)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("huaxiang-tests")
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn; ``spark`` starts (once) the run's Spark session or skips."""
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return str(request.param)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, dt.date]]:
    """``prepared(dataset)``: a data set ingested with the standard catalog, and its as-of date."""
    made: dict[str, tuple[Path, dt.date]] = {}

    def prepare(dataset: str) -> tuple[Path, dt.date]:
        if dataset in made:
            return made[dataset]
        root = tmp_path_factory.mktemp("engines") / dataset
        if dataset == "sample":
            workspace = Workspace.create_sample(root, users=400, seed=11)
            workspace.ingest()
            as_of = SAMPLE_AS_OF
        else:
            if not SHARED_DATA.is_dir():
                pytest.skip(f"the real data sets are not here: {SHARED_DATA}")
            example, as_of = EXAMPLES[dataset]
            ingest_example(example, root)
            slice_users(root, SLICE_USERS)
        install_standard_catalog(root / "tags")
        made[dataset] = (root, as_of)
        return made[dataset]

    return prepare


@pytest.fixture(scope="session")
def built(
    prepared: Callable[[str], tuple[Path, dt.date]], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], BuildResult]:
    """``built(dataset, engine)``: the standard catalog built on ``engine`` (once per pair and run)."""
    results: dict[tuple[str, str], BuildResult] = {}

    def build_on(dataset: str, engine: str) -> BuildResult:
        if (dataset, engine) not in results:
            source, as_of = prepared(dataset)
            root = on_engine(source, tmp_path_factory.mktemp(f"{dataset}-{engine}") / "ws", engine)
            results[dataset, engine] = build(root, as_of)
        return results[dataset, engine]

    return build_on
