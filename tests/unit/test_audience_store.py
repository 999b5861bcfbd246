"""Saved audiences (static / dynamic, size history, in_audience) and exports (files, hashing, log)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from huaxiang.audience import (
    AudienceEngine,
    AudienceError,
    AudienceNotFoundError,
    DefinitionError,
    EmptyAudienceError,
    ExportError,
    refresh_sizes,
)
from huaxiang.audience import export as export_module
from huaxiang.audience.synthetic import synthetic_snapshot

FIRST, SECOND = dt.date(2026, 10, 31), dt.date(2026, 11, 30)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    synthetic_snapshot(tmp_path, 2_000, seed=5, as_of=FIRST)
    return tmp_path


def test_dynamic_and_static_audiences_keep_a_size_history(workspace: Path) -> None:
    engine = AudienceEngine(workspace)
    members = engine.members("segment = 'vip' AND city_tier >= 3")
    dynamic = engine.save(
        "vip_small_towns", "segment = 'vip' AND city_tier >= 3", description="for coupons", by="ana"
    )
    static = engine.save("vip_frozen", "segment = 'vip' AND city_tier >= 3", kind="static", by="ana")
    assert (dynamic.kind, dynamic.sizes, dynamic.created_by, dynamic.description) == (
        "dynamic",
        (("2026-10-31", len(members)),),
        "ana",
        "for coupons",
    )
    assert dynamic.text == "segment = 'vip' AND city_tier >= 3"
    assert dynamic.definition == {
        "and": [
            {"tag": "segment", "op": "=", "value": "vip"},
            {"tag": "city_tier", "op": ">=", "value": 3},
        ]
    }
    assert (static.kind, static.frozen_as_of) == ("static", "2026-10-31")
    assert engine.store.members("vip_frozen") == engine.user_ids(members)
    assert [a.name for a in engine.all()] == ["vip_frozen", "vip_small_towns"]
    engine.close()

    # A later snapshot: different data (another seed), some users more.
    synthetic_snapshot(workspace, 2_500, seed=6, as_of=SECOND)
    later = AudienceEngine(workspace)
    assert later.as_of == "2026-11-30"
    now = later.members("segment = 'vip' AND city_tier >= 3")
    assert later.members("@vip_small_towns") == now
    # The static audience keeps its frozen users (all still present in the later snapshot).
    assert later.user_ids(later.members("@vip_frozen")) == engine.store.members("vip_frozen")
    refreshed = refresh_sizes(workspace, SECOND)
    assert (refreshed.as_of, refreshed.problems) == ("2026-11-30", {})
    assert refreshed.sizes == {"vip_frozen": len(members), "vip_small_towns": len(now)}
    assert later.store.get("vip_small_towns").sizes == (
        ("2026-10-31", len(members)),
        ("2026-11-30", len(now)),
    )
    assert refresh_sizes(workspace, SECOND).sizes == {"vip_frozen": len(members), "vip_small_towns": len(now)}
    assert len(later.store.get("vip_small_towns").sizes) == 2  # recorded once per snapshot
    later.close()


def test_refresh_reports_audiences_that_no_longer_fit(workspace: Path) -> None:
    assert refresh_sizes(workspace, FIRST).sizes == {}
    assert not (workspace / ".huaxiang" / "metadata.db").exists()  # nothing saved: no database made
    engine = AudienceEngine(workspace)
    engine.save("margin_positive", "margin > 0")
    engine.save("members", "is_member")
    engine.close()
    # The next build skipped the margin tag: its column is gone.
    folder = synthetic_snapshot(workspace, 2_000, seed=5, as_of=SECOND)
    tags = pq.read_table(folder / "tags.parquet")
    pq.write_table(tags.drop_columns(["margin"]), folder / "tags.parquet")
    later = AudienceEngine(workspace)
    refreshed = refresh_sizes(workspace, SECOND)
    assert refreshed.sizes == {"members": len(later.members("is_member"))}
    assert list(refreshed.problems) == ["margin_positive"]
    assert "unknown tag 'margin'" in refreshed.problems["margin_positive"]
    later.close()


def test_in_audience_combines_saved_audiences(workspace: Path) -> None:
    engine = AudienceEngine(workspace)
    engine.save("members", "is_member")
    engine.save("member_vips", "in_audience('members') AND segment = 'vip'")
    expected = engine.members("is_member AND segment = 'vip'")
    assert engine.members("@member_vips") == expected
    assert engine.members("in_audience('member_vips') OR NOT in_audience('members')") == (
        expected | (engine.index.universe - engine.members("is_member"))
    )
    assert engine.user_ids(engine.members("@member_vips")) == engine.ibis_user_ids("@member_vips")
    with pytest.raises(DefinitionError, match="no saved audience 'member_vip'. Did you mean 'member_vips'?"):
        engine.estimate("in_audience('member_vip')")
    with pytest.raises(DefinitionError, match="cannot be defined through itself"):
        engine.save("members", "in_audience('member_vips')", replace=True)
    with pytest.raises(AudienceError, match="an audience named 'members' already exists"):
        engine.save("members", "is_member")
    with pytest.raises(AudienceError, match="audience name '../x' is not allowed"):
        engine.save("../x", "is_member")
    engine.save("高潜会员", "is_member AND outing_score > 0.5")
    assert "高潜会员" in engine.store.names()
    with pytest.raises(AudienceNotFoundError, match="no saved audience 'nobody'"):
        engine.store.get("nobody")
    engine.close()


def test_export_plain_and_hashed_ids_and_log(workspace: Path) -> None:
    engine = AudienceEngine(workspace)
    text = "viewed_dyson_30d AND city_tier IN (3, 4, 5, 6)"
    user_ids = engine.user_ids(engine.members(text))
    plain = engine.export(text, "dyson.csv", by="ana")
    assert plain.path == workspace / "exports" / "dyson.csv"
    assert pacsv.read_csv(plain.path).column("user_id").to_pylist() == user_ids
    assert plain.sha256 == hashlib.sha256(plain.path.read_bytes()).hexdigest()
    hashed = engine.export(text, "dyson_partner.parquet", salt="partner-secret-1", by="bo")
    expected = [hashlib.sha256(f"partner-secret-1{u}".encode()).hexdigest() for u in user_ids]
    assert pq.read_table(hashed.path).column("user_id_sha256").to_pylist() == expected
    log = engine.store.exports()
    assert [(r.exported_by, r.rows, r.file_format, r.id_mode, Path(r.file).name) for r in log] == [
        ("ana", len(user_ids), "csv", "plain", "dyson.csv"),
        ("bo", len(user_ids), "parquet", "sha256", "dyson_partner.parquet"),
    ]
    assert log[0].audience == "viewed_dyson_30d = TRUE AND city_tier IN (3, 4, 5, 6)"
    assert log[0].as_of == "2026-10-31"
    with pytest.raises(ExportError, match="already exists; choose another file name or overwrite it"):
        engine.export(text, "dyson.csv")
    assert engine.export(text, "dyson.csv", overwrite=True).rows == len(user_ids)
    engine.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../etc/passwd.csv", "must be a bare file name (no folders, no '..')"),
        ("sub/x.csv", "must be a bare file name"),
        ("..csv", "must be a bare file name"),
        (".hidden.csv", "is not allowed: use letters, digits"),
        ("x.txt", "must end in .csv or .parquet"),
        ("x;rm.csv", "is not allowed"),
    ],
)
def test_export_file_names_are_checked(workspace: Path, name: str, message: str) -> None:
    engine = AudienceEngine(workspace)
    with pytest.raises(
        ExportError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        engine.export("is_member", name)
    assert not (workspace / "exports").exists() or not any((workspace / "exports").iterdir())
    assert engine.store.exports() == []
    engine.close()


def test_export_refuses_empty_audiences_short_salts_and_leaves_nothing_on_failure(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = AudienceEngine(workspace)
    with pytest.raises(EmptyAudienceError, match="^the audience is empty"):
        engine.export("segment = 'dormant'", "none.csv")
    with pytest.raises(ExportError, match="the salt has 3 characters; use at least 8"):
        engine.export("is_member", "x.csv", salt="abc")
    with pytest.raises(ExportError, match="ends in .csv but the format is parquet"):
        engine.export("is_member", "x.csv", file_format="parquet")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(export_module.pacsv, "write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        engine.export("is_member", "x.csv")
    assert list((workspace / "exports").iterdir()) == []
    assert engine.store.exports() == []
    engine.close()
