"""A build killed with SIGKILL leaves the previous snapshot whole; rebuilding a date gives identical bytes.

The kill is deterministic: the test-only hook ``HUAXIANG_TEST_PAUSE_BEFORE_PUBLISH``
(huaxiang.engine.snapshot) makes the build write both files into its unpublished
version folder, create the signal file and wait; the test kills it then.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.engine.snapshot import PAUSE_ENV
from huaxiang.errors import NotFoundError
from huaxiang.history import find_snapshot, list_snapshots
from huaxiang.workspace import Workspace

VALID = Path(__file__).parents[1] / "fixtures" / "catalogs" / "valid" / "tags"
AS_OF = dt.date(2026, 7, 1)
MODEL_TAGS = """
- id: rfm_class
  name_zh: RFM分类
  name_en: RFM class
  category: operable
  type: enum
  model: {name: rfm, params: {column: rfm_class}}
- id: lifecycle_stage
  name_zh: 生命周期
  name_en: Lifecycle
  category: operable
  type: enum
  model: {name: lifecycle, params: {column: lifecycle_stage}}
"""


def orders(n: int) -> pa.Table:
    return pa.table(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "user_id": [f"u{i % 3}" for i in range(n)],
            "order_time": pa.array(
                [dt.datetime(2026, 6, 1 + i % 28, 12) for i in range(n)], pa.timestamp("us")
            ),
            "amount": pa.array([Decimal(f"{10 + i}.00") for i in range(n)], pa.decimal128(18, 2)),
            "is_after_sale": [False] * n,
        }
    )


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"user_id": ["u0", "u1", "u2"], "city_tier": [1, 2, 3]}),
                   tmp_path / "data" / "users.parquet")
    pq.write_table(orders(6), tmp_path / "data" / "orders.parquet")
    shutil.copytree(VALID, tmp_path / "tags")
    (tmp_path / "tags" / "models.yaml").write_text(MODEL_TAGS, encoding="utf-8")
    (tmp_path / "huaxiang.yaml").write_text("name: t\n", encoding="utf-8")
    return tmp_path


def start_paused_build(root: Path, as_of: dt.date, signal_file: Path) -> subprocess.Popen[bytes]:
    """A build in a subprocess that stops right before publishing; returns once it has stopped there."""
    code = (
        "import datetime as dt, sys\n"
        "from huaxiang.workspace import Workspace\n"
        "Workspace(sys.argv[1]).build(dt.date.fromisoformat(sys.argv[2]))\n"
    )
    env = {**os.environ, PAUSE_ENV: str(signal_file)}
    process = subprocess.Popen([sys.executable, "-c", code, str(root), as_of.isoformat()], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not signal_file.exists():
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"the build ended before pausing (exit {process.returncode}): {stderr.decode()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the build did not reach the pause within 120 s")
        time.sleep(0.02)
    assert signal_file.read_text(encoding="utf-8") == str(process.pid)
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def visible(root: Path) -> list[str]:
    return sorted(entry.name for entry in (root / "snapshots").iterdir() if not entry.name.startswith("."))


@pytest.fixture
def signal_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the paused build says it has paused (outside the workspace)."""
    return tmp_path_factory.mktemp("signal") / "paused"


def test_a_killed_rebuild_leaves_the_previous_snapshot_whole(shop: Path, signal_file: Path) -> None:
    published = Workspace(shop).build(AS_OF).path
    tags_before = (published / "tags.parquet").read_bytes()
    manifest_before = (published / "manifest.json").read_bytes()
    version_before = published.resolve()
    # New data: the killed build has a different snapshot ready when it dies.
    pq.write_table(orders(9), shop / "data" / "orders.parquet")

    process = start_paused_build(shop, AS_OF, signal_file)
    versions = shop / "snapshots" / ".huaxiang" / "versions"
    pending = [folder for folder in versions.iterdir() if folder != version_before]
    assert len(pending) == 1 and (pending[0] / "tags.parquet").is_file()
    assert (pending[0] / "tags.parquet").read_bytes() != tags_before  # it was about to publish other values
    kill(process)

    assert published.resolve() == version_before
    assert (published / "tags.parquet").read_bytes() == tags_before
    assert (published / "manifest.json").read_bytes() == manifest_before
    assert pq.read_table(published / "tags.parquet").num_rows == 3
    assert visible(shop) == ["2026-07-01"]
    assert [s.path for s in list_snapshots(shop)] == [published]
    # The next build publishes normally and removes the folder the killed build left behind.
    rebuilt = Workspace(shop).build(AS_OF)
    assert pq.read_table(rebuilt.path / "tags.parquet").column("frequency_365d").to_pylist() == [3, 3, 3]
    assert sorted(versions.iterdir()) == [rebuilt.path.resolve()]


def test_a_killed_first_build_of_a_date_publishes_nothing(shop: Path, signal_file: Path) -> None:
    Workspace(shop).build(AS_OF)
    later = dt.date(2026, 7, 2)
    kill(start_paused_build(shop, later, signal_file))

    assert visible(shop) == ["2026-07-01"]
    assert not (shop / "snapshots" / "2026-07-02").exists()
    with pytest.raises(NotFoundError, match=r"no snapshot for 2026-07-02 in .*\. Snapshots: 2026-07-01\. "):
        find_snapshot(shop, later)


def test_rebuilding_a_date_gives_byte_identical_files(tmp_path: Path) -> None:
    workspace = Workspace.create_sample(tmp_path, users=300, seed=5)
    workspace.ingest()
    shutil.rmtree(tmp_path / "tags")
    shutil.copytree(VALID, tmp_path / "tags")
    (tmp_path / "tags" / "models.yaml").write_text(MODEL_TAGS, encoding="utf-8")
    first = workspace.build(dt.date(2026, 11, 1))
    tags_first = (first.path / "tags.parquet").read_bytes()
    manifest_first = (first.path / "manifest.json").read_bytes()
    second = workspace.build(dt.date(2026, 11, 1))
    assert (second.path / "tags.parquet").read_bytes() == tags_first
    assert pq.read_table(second.path / "tags.parquet").num_rows == 300
    assert {"rfm_class", "lifecycle_stage"} <= set(second.built)
    # So is the manifest; only build.json says when and how fast each build ran.
    assert first.manifest == second.manifest
    assert (second.path / "manifest.json").read_bytes() == manifest_first
    assert first.run["built_at"] <= second.run["built_at"]
