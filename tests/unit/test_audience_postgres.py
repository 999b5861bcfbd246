"""Saved audiences and the export log on PostgreSQL: the metadata database is any SQLAlchemy URL.

A throw-away PostgreSQL cluster is started in a temporary folder (``initdb`` and
``pg_ctl``, listening on a Unix socket only); the test is skipped where PostgreSQL
or the psycopg driver is not installed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from huaxiang.audience import AudienceEngine, refresh_sizes
from huaxiang.audience.synthetic import synthetic_snapshot

pytest.importorskip("psycopg", reason="the psycopg driver is not installed")
INITDB = shutil.which("initdb")
pytestmark = pytest.mark.skipif(INITDB is None, reason="PostgreSQL (initdb, pg_ctl) is not installed")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run the server's tools as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    # Not under pytest's temporary folder: the postgres user may not enter root's.
    root = Path(tempfile.mkdtemp(prefix="huaxiang-pg-"))
    data, socket = root / "data", root / "socket"
    socket.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(socket, "postgres")
    def run(*args: str) -> None:
        # No pipes: the server started by pg_ctl would keep them open.
        quiet = subprocess.DEVNULL
        subprocess.run(_as_postgres(list(args)), check=True, stdout=quiet, stderr=quiet)

    run(str(INITDB), "-D", str(data), "-U", "huaxiang", "--auth=trust")
    pg_ctl = str(Path(str(INITDB)).with_name("pg_ctl"))
    log = root / "server.log"
    run(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-o", f"-k {socket} -c listen_addresses=''", "start")
    try:
        yield f"postgresql+psycopg://huaxiang@/postgres?host={socket}"
    finally:
        run(pg_ctl, "-D", str(data), "-w", "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_saved_audiences_and_exports_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    first, second = dt.date(2026, 10, 31), dt.date(2026, 11, 30)
    synthetic_snapshot(tmp_path, 2_000, seed=5, as_of=first)
    engine = AudienceEngine(tmp_path, database_url=postgres_url)
    members = engine.members("segment = 'vip' AND city_tier >= 3")
    engine.save("vip_small_towns", "segment = 'vip' AND city_tier >= 3", by="ana")
    engine.save("vip_frozen", "segment = 'vip' AND city_tier >= 3", kind="static", by="ana")
    exported = engine.export("@vip_small_towns", "vips.csv", by="ana")
    engine.close()

    synthetic_snapshot(tmp_path, 2_500, seed=6, as_of=second)
    refreshed = refresh_sizes(tmp_path, second, database_url=postgres_url)
    later = AudienceEngine(tmp_path, database_url=postgres_url)
    try:
        now = later.members("segment = 'vip' AND city_tier >= 3")
        assert refreshed.sizes == {"vip_frozen": len(members), "vip_small_towns": len(now)}
        assert later.store.get("vip_small_towns").sizes == (
            ("2026-10-31", len(members)),
            ("2026-11-30", len(now)),
        )
        assert later.store.members("vip_frozen") == engine.user_ids(members)
        assert exported.rows == len(members)
        assert [(r.rows, r.exported_by, r.file) for r in later.store.exports()] == [
            (len(members), "ana", str(tmp_path / "exports" / "vips.csv"))
        ]
        # Nothing went to the default SQLite file.
        assert not (tmp_path / ".huaxiang" / "metadata.db").exists()
    finally:
        later.close()
