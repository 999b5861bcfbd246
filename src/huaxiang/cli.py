"""The ``huaxiang`` command: a thin layer that parses options and calls the library."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from huaxiang import __version__
from huaxiang.analysis.cli import register as register_analysis
from huaxiang.audience.cli import audience_app
from huaxiang.catalog import CATEGORY_LABELS_ZH, Category
from huaxiang.cli_common import WorkspaceOption, err, out, parse_date, print_error
from huaxiang.errors import CatalogError, HuaxiangError, StrictIngestError, did_you_mean
from huaxiang.groups_cli import groups_app
from huaxiang.io.ingest import IngestReport
from huaxiang.model import schema
from huaxiang.scenes.cli import register as register_scenes
from huaxiang.serve.cli import register as register_serve
from huaxiang.workspace import Workspace

if TYPE_CHECKING:
    from huaxiang.bins import BinsSuggestion
    from huaxiang.catalog.plan import CatalogPlan
    from huaxiang.history import SnapshotDiff
    from huaxiang.profile import UserProfile

app = typer.Typer(
    name="huaxiang",
    help="huaxiang (画像): e-commerce user profiling — ingest, tag, segment, select audiences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Print huaxiang's own errors plainly (no traceback) and exit non-zero."""
    try:
        yield
    except HuaxiangError as exc:
        print_error(exc)
        raise typer.Exit(1 if isinstance(exc, StrictIngestError) else 2) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"huaxiang {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """huaxiang (画像): e-commerce user profiling."""


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    name: Annotated[str | None, typer.Option(help="Workspace name (default: the folder name).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing huaxiang.yaml.")] = False,
) -> None:
    """Create a workspace: a commented huaxiang.yaml and a tags/ folder."""
    with _friendly_errors():
        workspace = Workspace.init(directory, name=name, force=force)
    out.print(f"Created workspace [bold]{workspace.path}[/]. Next: add sources to "
              f"{workspace.path / 'huaxiang.yaml'}, then run: huaxiang ingest -w {workspace.path}")


@app.command()
def sample(
    directory: Annotated[Path, typer.Argument(help="Workspace folder to write the sample shop into.")],
    users: Annotated[int, typer.Option(min=100, help="Number of users to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 7,
    dirty: Annotated[
        bool, typer.Option(help="Plant a few documented bad rows, so ingest shows its rejects.")
    ] = True,
) -> None:
    """Generate the sample shop (users, orders, events, ...) as a ready workspace."""
    with _friendly_errors(), _progress_bar() as progress:
        workspace = Workspace.create_sample(directory, users=users, seed=seed, dirty=dirty,
                                            progress=progress)
    out.print(f"Sample shop written to [bold]{workspace.path / 'sources'}[/]. "
              f"Next: huaxiang ingest -w {workspace.path}")


@app.command("ingest")
def ingest_command(
    workspace: WorkspaceOption = Path("."),
    strict: Annotated[
        bool, typer.Option(help="Fail (exit 1, publish nothing) if any row is rejected.")
    ] = False,
) -> None:
    """Read every source into the canonical tables; rejected rows are kept with their reasons."""
    ws = Workspace(workspace)
    with _friendly_errors(), out.status("ingesting") as status:
        report = ws.ingest(strict=strict, progress=lambda message: status.update(message))
    _print_report(report)
    out.print(f"Tables in [bold]{ws.data_dir}[/]; rejected rows in {ws.data_dir / 'rejects'}.")


@app.command()
def validate(
    workspace: WorkspaceOption = Path("."),
    show: Annotated[int, typer.Option(help="Rejected rows to show per source.")] = 5,
) -> None:
    """Check huaxiang.yaml and every source row without writing anything."""
    ws = Workspace(workspace)
    with _friendly_errors(), out.status("validating") as status:
        report = ws.validate(progress=lambda message: status.update(message))
    _print_report(report)
    for name, examples in report.examples.items():
        for example in examples[:show]:
            out.print(f"  {name} row {example['row']}: [yellow]{example['reason']}[/] "
                      f"({example['column'] or '-'}): {escape(example['detail'])}",
                      highlight=False, soft_wrap=True)
    if report.rows_rejected:
        out.print("'huaxiang ingest' writes every rejected row, with its raw values, to data/rejects/.")
    out.print("[green]The configuration is valid.[/]")




SnapshotDateOption = Annotated[
    dt.date | None,
    typer.Option("--as-of", parser=parse_date, metavar="YYYY-MM-DD", help="The snapshot (default: latest)."),
]


@app.command("build")
def build_command(
    as_of: Annotated[
        dt.date,
        typer.Option("--as-of", parser=parse_date, metavar="YYYY-MM-DD",
                     help="Build as of this day: only data strictly before it is used."),
    ],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Build every tag of the catalog as of a date into snapshots/YYYY-MM-DD (atomically)."""
    ws = Workspace(workspace)
    with _friendly_errors(), out.status("building tags"):
        result = ws.build(as_of)
    out.print(f"Built {len(result.built)} tags for {result.rows:,} users as of {result.as_of} "
              f"into [bold]{result.path}[/].", highlight=False)
    if result.skipped:
        grid = Table(title=f"Skipped {len(result.skipped)} tags (the build went on)", title_justify="left")
        grid.add_column("tag", no_wrap=True)
        grid.add_column("reason", overflow="fold")
        for tag_id, reason in result.skipped.items():
            grid.add_row(tag_id, reason)
        out.print(grid)
    for name, reason in result.audiences.items():
        err.print(f"[yellow]人群 audience {name!r} has no size in this snapshot:[/] {reason}",
                  highlight=False)


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Where to put the demo workspace.")] = Path("demo"),
    users: Annotated[int, typer.Option(min=100, help="Users in the sample shop.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Sample shop -> ingest -> summary, in one go."""
    with _friendly_errors():
        out.rule("1. sample shop")
        with _progress_bar() as progress:
            ws = Workspace.create_sample(directory, users=users, seed=seed, progress=progress)
        out.rule("2. ingest")
        with out.status("ingesting") as status:
            report = ws.ingest(progress=lambda message: status.update(message))
        _print_report(report)
        out.rule("3. what is there")
        _print_summary(ws)
        as_of = _day_after_last_order(ws)
        out.rule(f"4. tags as of {as_of}")
        with out.status("building tags"):
            result = ws.build(as_of)
        out.print(f"Built {len(result.built)} tags for {result.rows:,} users into {result.path}",
                  highlight=False)
        _print_distribution(result.path, "lifecycle_stage", "生命周期 lifecycle stage")
        _print_distribution(result.path, "rfm_class", "RFM 分层 RFM class")
        _print_distribution(result.path, "target_group_10", "十大靶群 ten target groups")
        _print_distribution(result.path, "aipl_stage", "AIPL 链路 AIPL stage")
    out.print(
        "\nNext, try (after 'source .venv/bin/activate' when installed by make):\n"
        f"  huaxiang tags list -w {directory}              the tag catalog\n"
        f"  huaxiang profile U00000001 -w {directory}      every tag of one user\n"
        f"  huaxiang audience estimate -w {directory} \"city_tier IN (3, 4) AND scene_outing\"\n"
        "      the size of an audience\n"
        f"  huaxiang bins suggest monetary_365d -w {directory} --positive   cut points from the data\n"
        f"  huaxiang validate -w {directory}               every check, with example rejects\n"
        "  huaxiang ingest -w examples/online_retail   the real Online Retail II data set\n"
        f"  canonical tables (Parquet): {directory / 'data'}",
        highlight=False,
    )
    _print_console(directory)


def _print_console(directory: Path) -> None:
    """How to open the console on the demo workspace, with an admin token made if it has none."""
    from huaxiang.serve.cli import first_admin

    token = first_admin(directory)
    sign_in = (
        f"  sign in with this admin token (shown once, keep it): {token}"
        if token is not None
        else f"  sign in with an admin token (the workspace has one; make another with "
        f"'huaxiang token create -w {directory} --role admin')"
    )
    make = "          (or: make console)" if str(directory) == "demo" else ""
    out.print(
        "\n[bold]The console 控制台[/] (docs/console.md): start the service, then open the URL\n"
        f"  huaxiang serve -w {directory}{make}\n"
        "  http://127.0.0.1:8000/console/\n" + sign_in,
        highlight=False,
        soft_wrap=True,
    )


app.add_typer(audience_app, name="audience")
app.add_typer(groups_app, name="groups")  # value groups report and compare (huaxiang.groups_cli)
register_analysis(app)  # experiment, review, plan-campaign, report (huaxiang.analysis.cli)

tags_app = typer.Typer(help="The tag catalog (标签目录): list, show and plan tags.", no_args_is_help=True)
app.add_typer(tags_app, name="tags")


@tags_app.command("list")
def tags_list(
    workspace: WorkspaceOption = Path("."),
    category: Annotated[str | None, typer.Option(help="Only this category (e.g. operable).")] = None,
) -> None:
    """List the catalog's tags in build order (every tag after the tags it reads)."""
    with _friendly_errors():
        catalog = Workspace(workspace).catalog()
        if category is not None and category not in {c.value for c in Category}:
            raise CatalogError(
                f"unknown category '{category}'.{did_you_mean(category, [c.value for c in Category])} "
                f"Categories: {', '.join(c.value for c in Category)}."
            )
    grid = Table(title=f"{len(catalog)} tags, catalog {catalog.hash[:12]}", title_justify="left")
    grid.add_column("id", no_wrap=True)
    for header in ("名称", "name", "category 分类", "type", "maker", "reads"):
        grid.add_column(header, overflow="fold")
    for tag in catalog:
        if category is not None and tag.category.value != category:
            continue
        grid.add_row(tag.id, tag.name_zh, tag.name_en,
                     f"{CATEGORY_LABELS_ZH[tag.category]} {tag.category.value}", tag.type, tag.maker,
                     ", ".join(sorted(catalog.dependencies[tag.id])) or "-")
    out.print(grid)


@tags_app.command("show")
def tags_show(
    tag_id: Annotated[str, typer.Argument(help="The tag's id.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Show one tag: its definition, where it is written, what it reads and what reads it."""
    with _friendly_errors():
        catalog = Workspace(workspace).catalog()
        tag = catalog[tag_id]
    location = catalog.locations.get(tag_id)
    out.print(f"[bold]{tag.id}[/]  {tag.name_zh} / {tag.name_en}", highlight=False)
    if location is not None:
        out.print(f"defined in {location.file}:{location.line}", highlight=False)
    out.print(f"category {CATEGORY_LABELS_ZH[tag.category]} {tag.category.value}; type {tag.type}; "
              f"made by {tag.maker}", highlight=False)
    if tag.description:
        out.print(tag.description, highlight=False, markup=False)
    out.print("reads tags: " + (", ".join(sorted(catalog.dependencies[tag_id])) or "-"), highlight=False)
    out.print("reads data: " + (", ".join(catalog.inputs(tag_id)) or "-"), highlight=False)
    out.print("read by: " + (", ".join(catalog.dependents(tag_id, transitive=True)) or "-"), highlight=False)
    definition = yaml.safe_dump(tag.normalised(), allow_unicode=True, sort_keys=False)
    out.print(definition, highlight=False, markup=False)


@tags_app.command("plan")
def tags_plan(
    workspace: WorkspaceOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show what the catalog changes against the latest snapshot: tags added, removed, changed, rebuilt."""
    with _friendly_errors():
        plan = Workspace(workspace).plan()
    if as_json:
        _print_json(plan.to_dict())
        return
    _print_plan(plan, workspace)


@app.command("diff")
def diff_command(
    before: Annotated[
        dt.date, typer.Argument(parser=parse_date, metavar="DATE1", help="The earlier snapshot.")
    ],
    after: Annotated[dt.date, typer.Argument(parser=parse_date, metavar="DATE2", help="The later snapshot.")],
    workspace: WorkspaceOption = Path("."),
    tag: Annotated[
        str | None, typer.Option(help="An enum or boolean tag: show its migration matrix.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare two snapshots: migration matrix, coverage and distribution drift (PSI), AIPL flows."""
    with _friendly_errors():
        result = Workspace(workspace).diff(before, after, tag=tag)
    if as_json:
        _print_json(result.to_dict())
        return
    _print_diff(result)


@app.command("profile")
def profile_command(
    user_id: Annotated[str, typer.Argument(help="The user's id, as in users.user_id.")],
    workspace: WorkspaceOption = Path("."),
    as_of: SnapshotDateOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
) -> None:
    """Show every tag of one user, grouped by category, imputed values flagged."""
    with _friendly_errors():
        result = Workspace(workspace).profile(user_id, as_of)
    if as_json:
        _print_json(result.to_dict())
        return
    _print_profile(result)


bins_app = typer.Typer(help="Bins (分档): cut points suggested from the data.", no_args_is_help=True)
app.add_typer(bins_app, name="bins")

register_serve(app)  # serve, token, audit, events (huaxiang.serve.cli)
register_scenes(app)  # scenes page / tag-products, evaluate-recs (huaxiang.scenes.cli)


@bins_app.command("suggest")
def bins_suggest(
    tag: Annotated[str, typer.Argument(help="A numeric tag of the snapshot, e.g. monetary_365d.")],
    workspace: WorkspaceOption = Path("."),
    as_of: SnapshotDateOption = None,
    k: Annotated[int, typer.Option("--k", min=2, max=100, help="Bins wanted (at most k-1 edges).")] = 5,
    trait: Annotated[
        str | None,
        typer.Option(help="A boolean or numeric tag: its rate or mean per bin, and whether each cut "
                          "separates it."),
    ] = None,
    positive: Annotated[
        bool, typer.Option(help="Fit on values above 0 and make 0 a bin of its own (e.g. non-buyers).")
    ] = False,
    method: Annotated[str, typer.Option(help="levels (similar head counts) or breaks (gaps).")] = "levels",
    scale: Annotated[str, typer.Option(help="log1p (skewed money) or linear.")] = "log1p",
    min_share: Annotated[float, typer.Option(help="Smallest share of users a bin may hold.")] = 0.02,
    as_json: Annotated[bool, typer.Option("--json", help="Print the suggestion as JSON.")] = False,
) -> None:
    """Suggest bin edges for a numeric tag where its distribution changes, as a tag to paste."""
    with _friendly_errors():
        result = Workspace(workspace).suggest_bins(
            tag, k, as_of=as_of, trait=trait, positive=positive, method=method, scale=scale,
            min_share=min_share,
        )
    if as_json:
        _print_json(result.to_dict())
        return
    _print_bins(result)


@app.command("schema")
def schema_command(
    markdown: Annotated[bool, typer.Option(help="Print docs/data-model.md as Markdown.")] = False,
) -> None:
    """Show the canonical data model."""
    if markdown:
        sys.stdout.write(schema.to_markdown())
        return
    for table in schema.TABLES.values():
        grid = Table(title=f"{table.name} — {table.description}", title_justify="left")
        for header in ("column", "type", "required", "meaning"):
            grid.add_column(header)
        for column in table.columns:
            grid.add_row(column.name, column.type_label, "yes" if column.required else "",
                         column.description)
        out.print(grid)


def _print_report(report: IngestReport) -> None:
    grid = Table(title="Sources (rows read = loaded + rejected)", title_justify="left")
    for header in ("source", "into", "read", "loaded", "rejected"):
        grid.add_column(header, justify="left" if header in ("source", "into") else "right", no_wrap=True)
    grid.add_column("reasons", overflow="fold", min_width=24)
    for name, source in report.sources.items():
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in source.rejected_by_reason.items())
        grid.add_row(name, source.into, f"{source.rows_read:,}", f"{source.rows_loaded:,}",
                     f"{source.rows_rejected:,}", reasons or "-")
    out.print(grid)
    tables = Table(title="Canonical tables", title_justify="left")
    for header in ("table", "rows", "derived", "orphans (kept, flagged)"):
        tables.add_column(header, justify="left" if header == "table" else "right")
    for name, table in report.tables.items():
        tables.add_row(name, f"{table.rows:,}", f"{table.derived_rows:,}", f"{table.orphans:,}")
    out.print(tables)
    state = "published" if report.published else "not written (dry run)"
    out.print(f"{state} in {report.seconds:.1f} s")


def _day_after_last_order(ws: Workspace) -> dt.date:
    import duckdb

    row = duckdb.connect().execute(
        "SELECT max(order_time) FROM read_parquet(?)", [str(ws.table_path("orders"))]
    ).fetchone()
    assert row is not None and row[0] is not None
    last: dt.datetime = row[0]
    return last.date() + dt.timedelta(days=1)


def _print_distribution(snapshot: Path, column: str, title: str) -> None:
    import duckdb

    rows = duckdb.connect().execute(
        f'SELECT "{column}", count(*) FROM read_parquet(?) GROUP BY 1 ORDER BY 2 DESC',
        [str(snapshot / "tags.parquet")],
    ).fetchall()
    grid = Table(title=title, title_justify="left")
    grid.add_column(column)
    grid.add_column("users", justify="right")
    for value, count in rows:
        grid.add_row("(none)" if value is None else str(value), f"{count:,}")
    out.print(grid)


def _print_summary(ws: Workspace) -> None:
    import duckdb

    con = duckdb.connect()
    orders = ws.table_path("orders")
    users = ws.table_path("users")
    row = con.execute(
        "SELECT (SELECT count(*) FROM read_parquet(?)), "
        "count(DISTINCT user_id) FILTER (WHERE NOT is_after_sale), "
        "sum(amount) FILTER (WHERE NOT is_after_sale), count(*) FILTER (WHERE NOT is_after_sale), "
        "min(order_time), max(order_time) FROM read_parquet(?)",
        [str(users), str(orders)],
    ).fetchone()
    assert row is not None
    n_users, buyers, gmv, n_orders, first, last = row
    grid = Table(title="The shop at a glance", title_justify="left", show_header=False)
    grid.add_row("users 用户", f"{n_users:,}")
    grid.add_row("buyers 购买用户", f"{buyers:,}")
    grid.add_row("valid orders 有效订单", f"{n_orders:,}")
    grid.add_row("GMV (excl. after-sale)", f"{gmv:,.2f} {ws.config.currency}")
    grid.add_row("ARPU per buyer", f"{(gmv or 0) / max(buyers, 1):,.2f} {ws.config.currency}")
    grid.add_row("orders from … to", f"{first:%Y-%m-%d} … {last:%Y-%m-%d}")
    out.print(grid)


# ---------------------------------------------------------------------------- history printers


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _signed_share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f} pp"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"


def _print_plan(plan: CatalogPlan, workspace: Path) -> None:
    if plan.as_of is None:
        out.print(f"No snapshot yet 尚无快照: the first build builds all {len(plan.added)} tags "
                  f"(huaxiang build -w {workspace} --as-of YYYY-MM-DD).", highlight=False)
    elif not plan.has_changes:
        out.print(f"No change 无变更: the catalog ({plan.catalog_hash[:12]}) matches the snapshot of "
                  f"{plan.as_of}.", highlight=False)
    else:
        out.print(f"Catalog {plan.catalog_hash[:12]} against the snapshot of {plan.as_of} "
                  f"(catalog {(plan.snapshot_catalog_hash or '?')[:12]}):", highlight=False)
        grid = Table(show_header=True, title_justify="left")
        grid.add_column("变更 change", no_wrap=True)
        grid.add_column("tag", no_wrap=True)
        grid.add_column("why 原因", overflow="fold")
        for tag_id in plan.added:
            grid.add_row("新增 added", tag_id, "new in the catalog")
        for tag_id in plan.removed:
            grid.add_row("删除 removed", tag_id, "no longer in the catalog: its column goes")
        for tag_id in plan.changed:
            grid.add_row("修改 changed", tag_id, "definition changed")
        for tag_id, sources in plan.rebuilt.items():
            grid.add_row("连带 rebuilt", tag_id, f"reads {', '.join(sources)}")
        out.print(grid)
        out.print(f"不变 unchanged: {len(plan.unchanged)} tags.", highlight=False)
    if plan.skipped:
        grid = Table(title=f"将跳过 Will be skipped: {len(plan.skipped)} tags (missing inputs)",
                     title_justify="left")
        grid.add_column("tag", no_wrap=True)
        grid.add_column("reason", overflow="fold")
        for tag_id, reason in plan.skipped.items():
            grid.add_row(tag_id, escape(reason))
        out.print(grid)


def _print_diff(result: SnapshotDiff) -> None:
    first, second = result.before.isoformat(), result.after.isoformat()
    out.print(f"快照对比 Snapshots {first} → {second}: users {result.users_before:,} → "
              f"{result.users_after:,} (in both {result.users_common:,}, new {result.users_new:,}, "
              f"gone {result.users_gone:,})", highlight=False)
    migration = result.migration
    if migration is not None:
        grid = Table(title=f"迁移矩阵 Migration of {migration.tag}: rows {first}, columns {second} "
                           "(users, row %)", title_justify="left")
        grid.add_column("from \\ to", no_wrap=True)
        for column in migration.columns:
            grid.add_column(escape(column), justify="right", no_wrap=True)
        grid.add_column("total", justify="right")
        for row in migration.rows:
            cells = [f"{migration.count(row, c):,} ({migration.row_share(row, c):.0%})"
                     for c in migration.columns]
            grid.add_row(escape(row), *cells, f"{migration.row_total(row):,}")
        out.print(grid)
    grid = Table(title="覆盖率与分布漂移 Coverage and drift (PSI > 0.1 watch, > 0.25 shift)",
                 title_justify="left")
    for header in ("tag", "coverage 覆盖率", "Δ", "PSI", "flag"):
        grid.add_column(header, no_wrap=True, justify="left" if header in ("tag", "flag") else "right")
    grid.add_column("detail", overflow="fold")
    colours = {"shift": "bold red", "watch": "yellow"}
    for item in result.drift:
        if item.kind == "categorical":
            detail = "; ".join(f"{escape(c.value)} {c.before:.1%}→{c.after:.1%}" for c in item.share_changes)
        elif item.kind == "numeric":
            detail = (f"mean {_number(item.mean_before)}→{_number(item.mean_after)}, "
                      f"median {_number(item.median_before)}→{_number(item.median_after)}")
        else:
            detail = ""
        if item.status != "both":
            detail = f"{item.status} 仅{'后' if item.status == 'added' else '前'}一期; {detail}".rstrip("; ")
        flag = f"[{colours[item.flag]}]{item.flag}[/]" if item.flag in colours else item.flag
        coverage = f"{_share(item.coverage_before)} → {_share(item.coverage_after)}"
        index = "-" if item.psi is None else f"{item.psi:.3f}"
        grid.add_row(item.tag, coverage, _signed_share(item.coverage_change), index, flag, detail)
    out.print(grid)
    if result.aipl is not None:
        stages = Table(title="AIPL 各阶段人数 users per stage", title_justify="left")
        stages.add_column("stage", no_wrap=True)
        stages.add_column(first, justify="right")
        stages.add_column(second, justify="right")
        for stage, count in result.aipl.counts_before.items():
            stages.add_row(stage, f"{count:,}", f"{result.aipl.counts_after[stage]:,}")
        out.print(stages)
        flows = Table(title=f"AIPL 流转率 flow rates {first} → {second}", title_justify="left")
        for header in ("flow", "from", "to", "users", "moved", "rate"):
            flows.add_column(header, no_wrap=True, justify="right" if header in ("users", "moved", "rate")
                             else "left")
        for flow in result.aipl.flows:
            flows.add_row(flow.name, flow.stage, " or ".join(flow.to), f"{flow.users:,}", f"{flow.moved:,}",
                          _share(flow.rate))
        out.print(flows)


def _value_text(entry: Any) -> str:
    value = entry.value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "是 true" if value else "否 false"
    text = str(value)
    if entry.value_zh and entry.value_zh != text:
        text = f"{text} {entry.value_zh}"
    return text


def _print_profile(result: UserProfile) -> None:
    out.print(f"用户画像 Profile of [bold]{escape(result.user_id)}[/] — snapshot {result.as_of}",
              highlight=False)
    for group in result.groups:
        grid = Table(title=f"{group.label_zh} {group.category}", title_justify="left")
        for header in ("tag", "名称", "name", "value 值"):
            grid.add_column(header, overflow="fold", no_wrap=header == "tag")
        for entry in group.entries:
            value = escape(_value_text(entry))
            if entry.imputed:
                value += " [yellow](推断 imputed)[/]"
            grid.add_row(entry.tag, escape(entry.name_zh), escape(entry.name_en), value)
        out.print(grid)


def _print_bins(result: BinsSuggestion) -> None:
    fitted = ", fitted on values above 0" if result.positive else ""
    out.print(f"分档建议 Cut points for [bold]{result.tag}[/] — snapshot {result.as_of}: "
              f"{result.users:,} users with a value ({result.nulls:,} without); k={result.k}, "
              f"method {result.method}, scale {result.scale}{fitted}", highlight=False)
    grid = Table(title="Bins (right-closed, as the engine cuts them)", title_justify="left")

    def measure(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.1%}" if result.trait_measure == "rate" else f"{value:,.2f}"

    for header in ("bin", "users", "share"):
        grid.add_column(header, justify="left" if header == "bin" else "right", no_wrap=True)
    if result.trait is not None:
        grid.add_column(f"{result.trait} {result.trait_measure}", justify="right")
    for row in result.bins:
        cells = [escape(row.label), f"{row.users:,}", f"{row.share:.1%}"]
        if result.trait is not None:
            cells.append(measure(row.trait))
        grid.add_row(*cells)
    out.print(grid)
    if result.trait is not None:
        test = "two-proportion z" if result.statistic == "z" else "Welch t"
        checks = Table(title=f"Does each cut separate {result.trait}? 是否区分 ({test}; "
                             f"|{result.statistic}| > 1.96 separates)", title_justify="left")
        headers = ("edge", "users ≤", "users >", "below", "above", result.statistic or "stat", "separates")
        for header in headers:
            checks.add_column(header, justify="right" if header != "separates" else "left", no_wrap=True)
        for check in result.checks:
            checks.add_row(_number(check.edge), f"{check.users_below:,}", f"{check.users_above:,}",
                           measure(check.trait_below), measure(check.trait_above),
                           "-" if check.statistic is None else f"{check.statistic:.2f}",
                           "是 yes" if check.separates else "否 no")
        out.print(checks)
    out.print("粘贴到 Paste into tags/*.yaml:", highlight=False)
    out.print(result.snippet, highlight=False, markup=False, soft_wrap=True, end="")


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    tasks: dict[str, Any] = {}
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:,}/{task.total:,}"), TimeElapsedColumn())
    with Progress(*columns, console=out, transient=False) as progress:
        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        yield update


if __name__ == "__main__":  # pragma: no cover
    app()
