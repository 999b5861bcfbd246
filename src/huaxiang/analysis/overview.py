"""The shop at a glance for one snapshot: users, buyers, GMV and ARPU (the console's overview).

``snapshot_overview(DIR, as_of)`` reads the snapshot's ``tags.parquet`` with Ibis: users are
its rows; buyers the users with a valid order in the 365 days before the date
(``frequency_365d >= 1``); GMV the sum of ``monetary_365d`` (valid orders, after-sale orders
excluded); ARPU is GMV per user (0 for users without an order, as in the report) and ARPPU GMV
per buyer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ibis

from huaxiang.history import find_snapshot, list_snapshots


@dataclass(frozen=True)
class Overview:
    as_of: dt.date
    snapshots: list[dt.date]
    """Every published snapshot of the workspace, oldest first (the console's picker)."""
    users: int
    buyers: int | None
    """``None`` when the snapshot has no ``frequency_365d``."""
    gmv_365d: float | None
    arpu: float | None
    arppu: float | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["snapshots"] = [day.isoformat() for day in self.snapshots]
        return data


def snapshot_overview(workspace_dir: str | Path, as_of: dt.date | None = None) -> Overview:
    """Users, buyers, GMV, ARPU and ARPPU of the snapshot of ``as_of`` (the latest by default)."""
    root = Path(workspace_dir)
    snapshot = find_snapshot(root, as_of)
    con = ibis.duckdb.connect()
    try:
        tags = con.read_parquet(snapshot.tags_path)
        metrics: dict[str, Any] = {"users": tags.count()}
        if "frequency_365d" in tags.columns:
            metrics["buyers"] = (tags.frequency_365d.fill_null(0) >= 1).sum()
        if "monetary_365d" in tags.columns:
            metrics["gmv"] = tags.monetary_365d.cast("decimal(38, 2)").sum()
        row = tags.aggregate(**metrics).to_pyarrow().to_pylist()[0]
    finally:
        con.disconnect()
    users = int(row["users"])
    buyers = int(row["buyers"] or 0) if "buyers" in row else None
    gmv = float(row["gmv"] or 0) if "gmv" in row else None
    return Overview(
        as_of=snapshot.as_of,
        snapshots=[found.as_of for found in list_snapshots(root)],
        users=users,
        buyers=buyers,
        gmv_365d=gmv,
        arpu=round(gmv / users, 2) if gmv is not None and users else None,
        arppu=round(gmv / buyers, 2) if gmv is not None and buyers else None,
    )
