"""``huaxiang groups``: the evaluation report of a grouping, and connected components vs k-means.

A thin Typer layer over :mod:`huaxiang.groups`; output is bilingual, Chinese first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from huaxiang.cli_common import WorkspaceOption, out, parse_date, print_error
from huaxiang.errors import HuaxiangError
from huaxiang.groups import DEFAULT_TAG, compare_groupings, group_report
from huaxiang.segment.group_report import (
    MEASURE_NAMES,
    GroupReport,
    feature_label,
    load_personas,
    persona_template,
)

groups_app = typer.Typer(
    name="groups",
    help="Groups 人群分组: the report of a grouping (15大靶群), and connected components vs k-means.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", metavar="YYYY-MM-DD", help="The snapshot (default: the latest)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _fail(error: HuaxiangError) -> None:
    print_error(error, "错误 error:")
    raise typer.Exit(2)


def _print_report(report: GroupReport, title: str) -> None:
    table = Table(title=title)
    headers = ("组 group", "人数 users", "占比 share", "人均 per user", "自动名 auto name", "人设 persona",
               "显著特征 distinguishing (share in group vs population, lift)")
    for column in headers:
        table.add_column(column, overflow="fold")
    for group in report.groups:
        persona = " / ".join(name for name in (group.persona_zh, group.persona_en) if name) or "-"
        lifts = "; ".join(
            f"{lift.feature}={lift.value} {lift.share_in_group:.0%} vs {lift.share_in_population:.0%} "
            f"x{lift.lift:.1f}" for lift in group.distinguishing
        )
        table.add_row(group.group, f"{group.users:,}", f"{group.share:.1%}", f"{group.value_per_user:,.2f}",
                      group.auto_name, persona, lifts or "-")
    out.print(table)
    out.print(f"价值 value: {MEASURE_NAMES.get(report.measure, report.measure)}")
    out.print(report.monotonicity_text(), markup=False)
    out.print("特征 features: " + ", ".join(feature_label(name) for name in report.features), markup=False)
    for name, why in report.missing_features.items():
        out.print(f"缺少特征 missing feature: {feature_label(name)} ({why})", markup=False)
    if report.ungrouped_users:
        out.print(f"无分组用户 users without a group: {report.ungrouped_users:,}")


@groups_app.command("report")
def report_command(
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    tag: Annotated[str, typer.Option(help="The grouping: an enum tag of the snapshot.")] = DEFAULT_TAG,
    personas: Annotated[
        Path | None,
        typer.Option(help="A YAML file of persona names per group (groups: {L0: 都市精英成功男})."),
    ] = None,
    write_personas: Annotated[
        Path | None, typer.Option(help="Write a persona file to edit, from the automatic names, and stop.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Sizes, ARPU (monotone or not), distinguishing features with lift and names of each group."""
    try:
        names = load_personas(personas) if personas is not None else None
        date = None if as_of is None else parse_date(as_of)
        report = group_report(workspace, date, tag=tag, personas=names)
    except HuaxiangError as error:
        _fail(error)
        return
    if write_personas is not None:
        write_personas.write_text(persona_template(report), encoding="utf-8")
        out.print(f"已写入 written: {write_personas}")
        return
    if as_json:
        out.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    _print_report(report, f"{tag}: 分组评估 group report")


@groups_app.command("compare")
def compare_command(
    workspace: WorkspaceOption = Path("."),
    as_of: AsOfOption = None,
    n_groups: Annotated[int, typer.Option(help="Groups of each method.")] = 15,
    random_state: Annotated[int, typer.Option(help="Seed of k-means.")] = 0,
    truth: Annotated[
        Path | None, typer.Option(help="Parquet with user_id and a planted grouping (default: the sample's).")
    ] = None,
    truth_column: Annotated[str, typer.Option(help="The planted grouping's column in --truth.")] = "persona",
    as_json: JsonOption = False,
) -> None:
    """Connected components (连通域分割) vs k-means on the same features: sizes, ARPU and ARI."""
    try:
        result = compare_groupings(
            workspace, None if as_of is None else parse_date(as_of), n_groups=n_groups,
            random_state=random_state, truth=truth, truth_column=truth_column,
        )
    except HuaxiangError as error:
        _fail(error)
        return
    if as_json:
        out.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    _print_report(result.connected, "连通域分割 connected components")
    _print_report(result.kmeans, "k-means")
    out.print(f"两种分组的调整兰德指数 adjusted Rand index between them: {result.ari_between:.3f}")
    for method, score in result.ari_truth.items():
        label: dict[str, Any] = {"connected": "连通域分割 connected components", "kmeans": "k-means"}
        out.print(f"与预设人群的调整兰德指数 ARI vs the planted {truth_column}, {label[method]}: {score:.3f}")
