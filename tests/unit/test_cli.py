"""The ``huaxiang`` command, driven through Typer's CliRunner."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from huaxiang import cli
from huaxiang.cli import app
from huaxiang.config import CONFIG_FILE
from huaxiang.storage import VERSIONS

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Print as on a wide terminal, so tables and messages are not wrapped by the test's width."""
    for console in (cli.out, cli.err):
        monkeypatch.setattr(console, "_width", 400)
    yield


def write_workspace(root: Path, config: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_FILE).write_text(textwrap.dedent(config).lstrip("\n"), encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


SMALL_CONFIG = """
version: 1
name: small
sources:
  users:
    path: users.csv
    into: users
    columns: {user_id: uid, age: age}
  behaviour:
    path: events.csv
    into: events
    columns: {event_type: action, event_time: ts}
    values:
      event_type: {pv: view, buy: purchase}
    derive: {users: {}}
"""
SMALL_FILES = {
    "users.csv": "uid,age\nu1,30\nu2,thirty\nu3,41\n",
    "events.csv": "user_id,action,ts\nu1,pv,2024-01-01 10:00:00\nu4,buy,2024-01-02 11:00:00\n"
                  "u4,buy,2024-01-02 11:00:00\nu5,zz,2024-01-03 09:00:00\n",
}


def small_workspace(root: Path) -> Path:
    return write_workspace(root, SMALL_CONFIG, SMALL_FILES)


def tables(output: str) -> dict[str, list[list[str]]]:
    """The cells of each rich table printed in ``output`` (header row first), by the table's title."""
    found: dict[str, list[list[str]]] = {}
    title = ""
    for line in output.splitlines():
        if line.startswith(("│", "┃")):
            bar = line[0]
            found.setdefault(title, []).append([c.strip() for c in line.strip(bar).split(bar)])
        elif line.strip() and not line.startswith(("┏", "┡", "└", "├")):
            title = line.strip()
    return found


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"huaxiang \d+\.\d+\.\d+\S*\n", result.stdout)


def test_init_creates_a_workspace_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "my-shop"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Created workspace {target}. Next: add sources to {target / CONFIG_FILE}, then run: "
        f"huaxiang ingest -w {target}\n"
    )
    config = (target / CONFIG_FILE).read_text(encoding="utf-8")
    assert "name: my_shop\n" in config
    assert (target / "tags" / "README.md").is_file()

    (target / CONFIG_FILE).write_text(config + "# my edits\n", encoding="utf-8")
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code == 2
    assert again.stderr == f"error: {target / CONFIG_FILE} already exists; use --force to overwrite it.\n"
    assert again.stdout == ""
    assert (target / CONFIG_FILE).read_text(encoding="utf-8").endswith("# my edits\n")

    forced = runner.invoke(app, ["init", str(target), "--force", "--name", "renamed"])
    assert forced.exit_code == 0, forced.output
    rewritten = (target / CONFIG_FILE).read_text(encoding="utf-8")
    assert "name: renamed\n" in rewritten
    assert "# my edits" not in rewritten


def test_ingest_prints_the_sources_table(tmp_path: Path) -> None:
    root = small_workspace(tmp_path / "ws")
    result = runner.invoke(app, ["ingest", "-w", str(root)])
    assert result.exit_code == 0, result.output
    printed = tables(result.stdout)
    assert printed["Sources (rows read = loaded + rejected)"] == [
        ["source", "into", "read", "loaded", "rejected", "reasons"],
        ["users", "users", "3", "2", "1", "bad_type 1"],
        ["behaviour", "events", "4", "2", "2", "duplicate_row 1, unknown_value 1"],
    ]
    # u4 and u5 only act in events: derived (u5's row is rejected, but the user exists).
    assert printed["Canonical tables"] == [
        ["table", "rows", "derived", "orphans (kept, flagged)"],
        ["users", "4", "2", "0"],
        ["events", "2", "0", "0"],
    ]
    assert re.search(r"^published in \d+\.\d s$", result.stdout, re.MULTILINE)
    assert f"Tables in {root / 'data'}; rejected rows in {root / 'data' / 'rejects'}." in result.stdout
    assert (root / "data" / "users.parquet").is_file()
    assert (root / "data" / "rejects" / "behaviour.parquet").is_file()
    assert result.stderr == ""


def test_config_error_exits_2_with_file_and_line_and_no_traceback(tmp_path: Path) -> None:
    root = small_workspace(tmp_path / "ws")
    config = root / CONFIG_FILE
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("columns: {user_id", "colums: {user_id"), encoding="utf-8")
    result = runner.invoke(app, ["ingest", "-w", str(root)])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: huaxiang.yaml:7: sources.users.colums: unknown field 'colums'. Allowed: into, path, format, "
        "connection, table, csv, columns, values, time_format, timezone, list_separator, reject_if, "
        "after_sale_if, time_range, derive. Did you mean 'columns'?\n"
    )
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert not (root / "data").exists()


def test_source_error_exits_2(tmp_path: Path) -> None:
    root = small_workspace(tmp_path / "ws")
    (root / "events.csv").unlink()
    result = runner.invoke(app, ["validate", "-w", str(root)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: Source 'behaviour': file events.csv not found (looked at {root / 'events.csv'}). "
        "Fix 'sources.behaviour.path' in huaxiang.yaml.\n"
    )


def test_not_a_workspace(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path} is not a huaxiang workspace (no huaxiang.yaml). Create one with "
        f"'huaxiang init {tmp_path}' or 'huaxiang sample {tmp_path}'.\n"
    )


def test_strict_exits_1_and_publishes_nothing(tmp_path: Path) -> None:
    root = small_workspace(tmp_path / "ws")
    result = runner.invoke(app, ["ingest", "--strict", "-w", str(root)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: --strict: 3 rows were rejected; nothing was published.",
        "  users row 2: bad_type (age): cannot read 'thirty' as int for age (source column 'age')",
        "  behaviour row 3: duplicate_row (None): exact copy of an earlier row of this source",
        "  behaviour row 4: unknown_value (event_type): unknown value 'zz' for event_type (source column "
        "'action'); allowed: visit, view, search, click, favorite, cart, cart_remove, purchase, share, "
        "ad_click, task, review. Map it under values.event_type.",
        "See every reason with 'huaxiang validate' (it writes nothing).",
    ]
    assert "Traceback" not in result.output
    assert not (root / "data").exists()
    assert not (root / VERSIONS).exists() or not any((root / VERSIONS).iterdir())


def test_validate_reports_and_writes_nothing(tmp_path: Path) -> None:
    root = small_workspace(tmp_path / "ws")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = runner.invoke(app, ["validate", "-w", str(root)])
    assert result.exit_code == 0, result.output
    assert tables(result.stdout)["Sources (rows read = loaded + rejected)"][1] == [
        "users", "users", "3", "2", "1", "bad_type 1",
    ]
    assert "not written (dry run)" in result.stdout
    assert "  users row 2: bad_type (age): cannot read 'thirty' as int for age (source column 'age')" in (
        result.stdout
    )
    assert result.stdout.rstrip().endswith("The configuration is valid.")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_schema_markdown_equals_docs_data_model() -> None:
    """docs/data-model.md is generated (make docs-schema); this keeps it in sync with the schema."""
    result = runner.invoke(app, ["schema", "--markdown"])
    assert result.exit_code == 0
    expected = (REPO / "docs" / "data-model.md").read_text(encoding="utf-8")
    assert result.stdout == expected, "docs/data-model.md is stale: run 'make docs-schema'"


def test_schema_table_lists_every_canonical_table() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    for name in ("users", "orders", "order_items", "events", "products", "content", "touches"):
        assert f"\n{name} — " in "\n" + result.stdout


def test_markup_in_data_is_printed_verbatim(tmp_path: Path) -> None:
    root = write_workspace(
        tmp_path / "ws",
        "version: 1\nname: t\nsources:\n"
        "  users: {path: u.csv, into: users, columns: {user_id: uid, age: age}}\n",
        {"u.csv": "uid,age\nu1,[/x]\n"},
    )
    strict = runner.invoke(app, ["ingest", "--strict", "-w", str(root)])
    assert strict.exit_code == 1
    assert "cannot read '[/x]' as int" in strict.stderr
    validate = runner.invoke(app, ["validate", "-w", str(root)])
    assert validate.exit_code == 0
    assert "cannot read '[/x]' as int" in validate.stdout


def test_error_message_is_not_wrapped_on_a_narrow_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.err, "_width", 80)
    root = small_workspace(tmp_path / "ws")
    config = root / CONFIG_FILE
    config.write_text(config.read_text(encoding="utf-8").replace("into: events", "into: event"), "utf-8")
    result = runner.invoke(app, ["ingest", "-w", str(root)])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: huaxiang.yaml:10: sources.behaviour.into: unknown table 'event'; allowed: users, orders, "
        "order_items, events, products, content, touches, order_lines. Did you mean 'events'?\n"
    )
