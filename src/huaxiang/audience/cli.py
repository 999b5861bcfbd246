"""``huaxiang audience``: estimate, venn, top, split, save, list, export (a Typer sub-app).

A definition argument is the text form (``"city_tier IN (3, 4) AND NOT trait_hesitant"``),
the JSON form (starting with ``{``) or ``@name`` for a saved audience. Output is
bilingual, Chinese first. Every command is a call into :class:`AudienceEngine`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.markup import escape
from rich.table import Table

from huaxiang.audience.engine import AudienceEngine
from huaxiang.audience.errors import AudienceError, DefinitionError
from huaxiang.cli_common import WorkspaceOption, out, parse_date, print_error
from huaxiang.errors import HuaxiangError

audience_app = typer.Typer(
    name="audience",
    help="Audiences 人群圈选: size, Venn, top N, splits, saved audiences and exports over a snapshot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
DefinitionArgument = Annotated[
    str, typer.Argument(help="The audience: text form, JSON (starting with '{') or @saved_name.")
]


def _as_of(value: str | None) -> dt.date | None:
    return None if value is None else parse_date(value)


AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", metavar="YYYY-MM-DD", help="The snapshot (default: the latest)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@contextmanager
def _engine(workspace: Path, as_of: str | None) -> Iterator[AudienceEngine]:
    """An engine over the snapshot; huaxiang's own errors are printed plainly (exit 2)."""
    engine: AudienceEngine | None = None
    try:
        engine = AudienceEngine(workspace, _as_of(as_of))
        yield engine
    except HuaxiangError as exc:
        print_error(exc, "错误 error:")
        raise typer.Exit(2) from None
    finally:
        if engine is not None:
            engine.close()


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _share(size: int, users: int) -> str:
    if not users:
        return "-"
    share = size / users
    return f"{share:.2%}" if share >= 0.001 or share == 0 else f"{share:.4%}"


@audience_app.command()
def estimate(
    definition: DefinitionArgument,
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    sample: Annotated[int, typer.Option(help="Also show this many random members with their tags.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Size of an audience 人群规模 (checks the definition first)."""
    with _engine(workspace, as_of) as engine:
        result = engine.estimate(definition)
        rows = engine.sample(definition, sample) if sample and result.size else None
        if as_json:
            data: dict[str, Any] = {
                "as_of": engine.as_of,
                "definition": result.text,
                "size": result.size,
                "users": result.users,
                "share": round(result.share, 6),
                "milliseconds": result.milliseconds,
            }
            if rows is not None:
                data["sample"] = rows.to_pylist()
            _print_json(data)
            return
        out.print(f"快照 snapshot: {engine.as_of}", highlight=False)
        out.print(f"人群 audience: {escape(result.text)}", highlight=False)
        out.print(
            f"人数 size: [bold]{result.size:,}[/] / {result.users:,} 用户 users "
            f"({_share(result.size, result.users)}),"
            f" {result.milliseconds:.1f} ms",
            highlight=False,
        )
        if rows is not None:
            out.print(_arrow_table(rows, "样本 sample"))


@audience_app.command()
def venn(
    definitions: Annotated[list[str], typer.Argument(help="Two or three audiences (text, JSON or @name).")],
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    names: Annotated[
        str | None, typer.Option(help="Comma-separated names for the audiences (default A,B,C).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Overlap of 2-3 audiences 人群交叉 (Venn): every region's size."""
    with _engine(workspace, as_of) as engine:
        labels = [n.strip() for n in names.split(",")] if names else None
        result = engine.venn(definitions, labels)
        if as_json:
            _print_json({"as_of": engine.as_of, **result.to_dict()})
            return
        table = Table(title=f"韦恩图 Venn · {engine.as_of}")
        table.add_column("区域 region")
        table.add_column("人数 size", justify="right")
        table.add_column("占比 share", justify="right")
        for name, definition, size in zip(result.names, definitions, result.sizes, strict=True):
            table.add_row(f"{escape(name)} = {escape(definition)}", f"{size:,}", _share(size, result.users))
        table.add_section()
        for pattern, size in result.regions.items():
            table.add_row(escape(result.region_label(pattern)), f"{size:,}", _share(size, result.users))
        table.add_section()
        table.add_row("并集 union", f"{result.union:,}", _share(result.union, result.users))
        out.print(table)


@audience_app.command()
def top(
    definition: DefinitionArgument,
    by: Annotated[str, typer.Option(help="The number or probability tag to rank by.")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="How many users.")] = 100,
    ascending: Annotated[bool, typer.Option(help="Lowest values first.")] = False,
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    show: Annotated[int, typer.Option(help="Rows to print.")] = 10,
    output: Annotated[
        str | None, typer.Option("--export", help="Also write the list to exports/NAME (.csv or .parquet).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Top N members by a tag 按标签取前N (exact; ties by user_id)."""
    with _engine(workspace, as_of) as engine:
        ranked = engine.top(definition, by, n, descending=not ascending)
        written = None
        if output:
            what = f"top {n} by {by} {'ascending' if ascending else 'descending'} of: {definition}"
            written = engine.export_user_ids(ranked.column("user_id").to_pylist(), output, what, by=None)
        if as_json:
            _print_json(
                {
                    "as_of": engine.as_of,
                    "by": by,
                    "rows": ranked.to_pylist(),
                    "file": str(written.path) if written else None,
                }
            )
            return
        out.print(
            f"按 {escape(by)} 取前 {n:,} top {n:,} by {escape(by)}: {ranked.num_rows:,} 人 users",
            highlight=False,
        )
        if ranked.num_rows < n:
            out.print(
                f"只有 only {ranked.num_rows:,} 名成员有 {escape(by)} 值 "
                f"members have a value of {escape(by)}.",
                highlight=False,
            )
        out.print(_arrow_table(ranked.slice(0, show), f"前 {min(show, ranked.num_rows)} 名 first rows"))
        if written:
            out.print(f"已导出 exported: {written.path} ({written.rows:,} 行 rows)", highlight=False)


@audience_app.command()
def split(
    definition: DefinitionArgument,
    salt: Annotated[
        str, typer.Option(help="Experiment salt (e.g. the experiment id): same salt, same groups.")
    ],
    ratios: Annotated[
        str, typer.Option(help="Comma-separated ratios or weights, e.g. 0.9,0.1 or 1,1,1.")
    ] = "0.5,0.5",
    names: Annotated[
        str | None, typer.Option(help="Comma-separated group names (default treatment,control).")
    ] = None,
    stratify: Annotated[
        str | None, typer.Option(help="A boolean, enum or integer tag to stratify by.")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--export", help="Write user_id and group to exports/NAME (.csv or .parquet); logged."),
    ] = None,
    hash_salt: Annotated[
        str | None, typer.Option(help="With --export: salted SHA-256 ids instead of user ids.")
    ] = None,
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stable random split into groups 分组 (A/B): salted SHA-256 of the user id."""
    try:
        weights = [float(part) for part in ratios.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"--ratios {ratios!r}: write numbers separated by commas, e.g. 0.9,0.1."
        ) from None
    labels = [part.strip() for part in names.split(",")] if names else None
    with _engine(workspace, as_of) as engine:
        result = engine.split(definition, weights, salt, names=labels, stratify=stratify)
        sizes = result.sizes()
        total = sum(sizes.values())
        written = None
        if output:
            what = (
                f"split {ratios} salt={salt}"
                + (f" stratify={stratify}" if stratify else "")
                + f" of: {definition}"
            )
            written = engine.export_user_ids(
                result.assignment.column("user_id").to_pylist(),
                output,
                what,
                salt=hash_salt,
                extra={"group": result.assignment.column("group").to_pylist()},
            )
        if as_json:
            _print_json(
                {
                    "as_of": engine.as_of,
                    "file": str(written.path) if written else None,
                    "salt": salt,
                    "stratify": stratify,
                    "groups": [
                        {"name": name, "ratio": ratio, "size": sizes[name]}
                        for name, ratio in zip(result.names, result.ratios, strict=True)
                    ],
                }
            )
            return
        table = Table(
            title=f"分组 split · salt={escape(salt)}"
            + (f" · 分层 stratified by {stratify}" if stratify else "")
        )
        for column in ("组 group", "目标比例 ratio", "人数 size", "实际比例 actual"):
            table.add_column(column, justify="right" if column != "组 group" else "left")
        for name, ratio in zip(result.names, result.ratios, strict=True):
            table.add_row(escape(name), f"{ratio:.2%}", f"{sizes[name]:,}", _share(sizes[name], total))
        out.print(table)
        if written:
            out.print(f"已导出 exported: {written.path} ({written.rows:,} 行 rows)", highlight=False)


@audience_app.command()
def save(
    name: Annotated[str, typer.Argument(help="Name of the audience (letters, digits, _ or -).")],
    definition: DefinitionArgument,
    static: Annotated[
        bool, typer.Option("--static", help="Freeze today's members (default: dynamic).")
    ] = False,
    description: Annotated[str | None, typer.Option(help="What the audience is for.")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite a saved audience of the same name.")] = False,
    by: Annotated[str | None, typer.Option(help="Who saves it (default: the login name).")] = None,
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
) -> None:
    """Save an audience 保存人群: dynamic (re-evaluated each snapshot) or --static (frozen)."""
    with _engine(workspace, as_of) as engine:
        saved = engine.save(
            name,
            definition,
            kind="static" if static else "dynamic",
            description=description,
            by=by,
            replace=replace,
        )
        kind = "静态 static" if saved.kind == "static" else "动态 dynamic"
        out.print(
            f"已保存 saved: {escape(saved.name)} ({kind}), "
            f"{saved.latest_size or 0:,} 人 users @ {engine.as_of}",
            highlight=False,
        )


@audience_app.command("list")
def list_audiences(
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    exports: Annotated[bool, typer.Option("--exports", help="List the export log instead.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Saved audiences 已保存人群 with their size history (or, with --exports, the export log)."""
    with _engine(workspace, as_of) as engine:
        if exports:
            _print_exports(engine, as_json)
            return
        saved = engine.all()
        if as_json:
            _print_json(
                [
                    {
                        "name": a.name,
                        "kind": a.kind,
                        "definition": a.text,
                        "description": a.description,
                        "created_by": a.created_by,
                        "created_at": a.created_at.isoformat(),
                        "frozen_as_of": a.frozen_as_of,
                        "sizes": [{"as_of": d, "size": s} for d, s in a.sizes],
                    }
                    for a in saved
                ]
            )
            return
        if not saved:
            out.print("还没有保存的人群 no saved audiences yet (huaxiang audience save NAME DEFINITION).")
            return
        table = Table(title="已保存人群 saved audiences")
        for column in ("名称 name", "类型 kind", "定义 definition", "规模历史 size history"):
            table.add_column(column)
        for item in saved:
            history = ", ".join(f"{d}: {s:,}" for d, s in item.sizes)
            kind = "静态 static" if item.kind == "static" else "动态 dynamic"
            table.add_row(escape(item.name), kind, escape(item.text), history)
        out.print(table)


@audience_app.command()
def export(
    definition: DefinitionArgument,
    file_name: Annotated[str, typer.Option("--file", help="File name in DIR/exports/ (.csv or .parquet).")],
    hash_salt: Annotated[
        str | None, typer.Option(help="Export salted SHA-256 ids instead of user ids (for outside partners).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
    by: Annotated[str | None, typer.Option(help="Who exports (default: the login name); logged.")] = None,
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
) -> None:
    """Export members' ids 导出人群 to CSV / Parquet (logged: who, when, what, how many)."""
    with _engine(workspace, as_of) as engine:
        result = engine.export(definition, file_name, salt=hash_salt, by=by, overwrite=overwrite)
        mode = "加盐哈希 salted SHA-256" if result.id_mode == "sha256" else "用户ID user ids"
        out.print(
            f"已导出 exported: {result.path} — {result.rows:,} 行 rows, {mode}, sha256 {result.sha256[:12]}…",
            highlight=False,
        )


@audience_app.command("sql")
def sql(
    definition: DefinitionArgument,
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    dialect: Annotated[str, typer.Option(help="SQL dialect (clickhouse).")] = "clickhouse",
    mode: Annotated[
        str,
        typer.Option(
            help="wide: every condition over the tag table; bitmap: enum/boolean from the bitmap table."
        ),
    ] = "wide",
    output: Annotated[str, typer.Option(help="size, ids (dense uid) or user_ids.")] = "size",
    table: Annotated[str, typer.Option(help="The wide tag table (uid, user_id, a column per tag).")] = "tags",
    bitmap_table: Annotated[str, typer.Option(help="The (tag, value) bitmap table.")] = "tag_bitmaps",
    ddl: Annotated[
        bool, typer.Option("--ddl", help="Also print the statements that create and load both tables.")
    ] = False,
) -> None:
    """The audience as ClickHouse SQL 生成 ClickHouse SQL (groupBitmap / bitmapAnd), printed, not run."""
    from huaxiang.audience import clickhouse

    with _engine(workspace, as_of) as engine:
        if dialect.lower() != "clickhouse":
            raise AudienceError(
                f"dialect '{dialect}' is not supported; use clickhouse (Doris: see docs/audiences.md, "
                "'ClickHouse / Doris', for the function names to change)."
            )
        node = engine.definition(definition)
        specs = engine.index.specs

        def resolve(name: str) -> Any:
            saved = engine.store.get(name)
            if saved.kind == "static":
                raise DefinitionError(
                    f"saved audience '{name}' is static: its members are frozen user ids in huaxiang's "
                    "metadata database, which ClickHouse SQL cannot read. Export it and load the ids, or "
                    "use a dynamic audience."
                )
            return saved.definition

        statements: list[str] = []
        if ddl:
            source = clickhouse.parquet_source(str(engine.snapshot.tags_path.resolve()))
            statements += clickhouse.tag_table_sql(engine.snapshot.schema, specs, source, table=table)
            statements += clickhouse.bitmap_table_sql(specs, table=table, bitmap_table=bitmap_table)
        statements.append(
            clickhouse.to_clickhouse(
                node,
                specs,
                table=table,
                mode=mode,  # type: ignore[arg-type]  # checked by to_clickhouse
                output=output,  # type: ignore[arg-type]
                bitmap_table=bitmap_table,
                audiences=resolve,
            )
        )
        # Plain print: the SQL must reach a pipe unchanged (no markup, no wrapping).
        print(";\n\n".join(statements) + ";")


def _arrow_table(rows: pa.Table, title: str) -> Table:
    table = Table(title=title)
    for name in rows.column_names:
        table.add_column(escape(name))
    for record in rows.to_pylist():
        table.add_row(
            *(
                escape("" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v))
                for v in record.values()
            )
        )
    return table


def _print_exports(engine: AudienceEngine, as_json: bool) -> None:
    records = engine.store.exports()
    if as_json:
        _print_json([record.__dict__ for record in records])
        return
    if not records:
        out.print("还没有导出记录 no exports yet.")
        return
    table = Table(title="导出记录 export log")
    for column in (
        "时间 when (UTC)",
        "操作人 who",
        "快照 as of",
        "行数 rows",
        "文件 file",
        "ID",
        "人群 audience",
    ):
        table.add_column(column)
    for record in records:
        table.add_row(
            record.exported_at.isoformat(sep=" "),
            escape(record.exported_by),
            record.as_of,
            f"{record.rows:,}",
            escape(Path(record.file).name),
            record.id_mode,
            escape(record.audience),
        )
    out.print(table)
