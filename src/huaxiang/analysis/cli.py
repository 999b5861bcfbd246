"""``huaxiang experiment | review | plan-campaign | report``: the analysis commands (Typer).

Each command parses its options and calls the library (:mod:`huaxiang.analysis`); output is
bilingual, Chinese first, and ``--json`` prints the library's plain data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from huaxiang.cli_common import WorkspaceOption, out, parse_date, print_error
from huaxiang.errors import HuaxiangError

experiment_app = typer.Typer(
    name="experiment",
    help="Experiments 实验 (A/B): create, assign, import outcomes, results, sample size.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
review_app = typer.Typer(
    name="review",
    help="Reviews 复盘: a campaign by segment × weekday, churn by segment per week.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
DateOption = Annotated[str | None, typer.Option(metavar="YYYY-MM-DD")]


@contextmanager
def _errors() -> Iterator[None]:
    """huaxiang's own errors printed plainly (exit 2), as in the other commands."""
    try:
        yield
    except HuaxiangError as exc:
        print_error(exc, "错误 error:")
        raise typer.Exit(2) from None


def _json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _date(value: str | None) -> dt.date | None:
    return None if value is None else parse_date(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


# ---------------------------------------------------------------------------- experiment


def _parse_variants(text: str) -> list[dict[str, Any]]:
    variants = []
    for part in text.split(","):
        name, sep, ratio = part.partition("=")
        try:
            if not sep:
                raise ValueError
            variants.append({"name": name.strip(), "ratio": float(ratio)})
        except ValueError:
            raise typer.BadParameter(
                f"--variants {text!r}: write name=ratio pairs separated by commas, "
                "e.g. coupon=0.9,control=0.1."
            ) from None
    return variants


@experiment_app.command("create")
def experiment_create(
    name: Annotated[str | None, typer.Argument(help="Experiment name (letters, digits, _ or -).")] = None,
    workspace: WorkspaceOption = Path("."),
    audience: Annotated[
        str | None, typer.Option(help="The audience: text form, JSON or @saved_name.")
    ] = None,
    variants: Annotated[
        str, typer.Option(help="name=ratio pairs; the ratios sum to 1.")
    ] = "treatment=0.5,control=0.5",
    control: Annotated[str, typer.Option(help="The variant that is the control group.")] = "control",
    touch_date: DateOption = None,
    window: Annotated[int, typer.Option(help="Attribution window in days after the touch.")] = 7,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics (default: the four order metrics).")
    ] = None,
    salt: Annotated[str | None, typer.Option(help="Split salt (default: the experiment name).")] = None,
    stratify: Annotated[
        str | None, typer.Option(help="A boolean, enum or integer tag to stratify the split by.")
    ] = None,
    as_of: DateOption = None,
    from_touches: Annotated[
        str | None, typer.Option(help="Read a campaign already sent from the touches table (its id).")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A YAML definition instead of options.")] = None,
    replace: Annotated[bool, typer.Option(help="Replace an experiment of the same name.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create an experiment 创建实验 (a split of an audience, a YAML file, or a sent campaign)."""
    from huaxiang.analysis.experiments import (
        create_experiment,
        definition_from_data,
        experiment_from_touches,
        load_definition,
    )

    with _errors():
        if from_touches:
            saved = experiment_from_touches(
                workspace,
                from_touches,
                name=name,
                window_days=window,
                metrics=metrics.split(",") if metrics else None,
                replace=replace,
            )
        else:
            if file is not None:
                definition = load_definition(file)
            else:
                if name is None or touch_date is None:
                    raise typer.BadParameter("give NAME and --touch-date (or --file, or --from-touches).")
                data: dict[str, Any] = {
                    "name": name,
                    "audience": audience,
                    "variants": _parse_variants(variants),
                    "control": control,
                    "touch_date": touch_date,
                    "window_days": window,
                    "salt": salt,
                    "stratify": stratify,
                    "as_of": as_of,
                }
                if metrics:
                    data["metrics"] = [m.strip() for m in metrics.split(",")]
                definition = definition_from_data(data)
            saved = create_experiment(workspace, definition, replace=replace)
        if as_json:
            _json({"name": saved.name, "definition": saved.definition, "sizes": saved.sizes})
            return
        out.print(f"已创建 created: {escape(saved.name)}", highlight=False)
        if saved.sizes:
            sizes = " · ".join(f"{escape(k)} {v:,}" for k, v in saved.sizes.items())
            out.print(f"分组 groups: {sizes}", highlight=False)
        else:
            out.print(
                f"下一步 next: huaxiang experiment assign {escape(saved.name)} -w {workspace}",
                highlight=False,
            )


@experiment_app.command("assign")
def experiment_assign(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    workspace: WorkspaceOption = Path("."),
    as_of: DateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assign users to variants 分组 (stable salted split) and freeze the assignment."""
    from huaxiang.analysis.experiments import assign

    with _errors():
        sizes = assign(workspace, name, as_of=_date(as_of))
        if as_json:
            _json(sizes)
            return
        total = sum(sizes.values()) or 1
        out.print(
            "分组 groups: " + " · ".join(f"{escape(k)} {v:,} ({v / total:.1%})" for k, v in sizes.items()),
            highlight=False,
        )


@experiment_app.command("outcomes")
def experiment_outcomes(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    file: Annotated[Path, typer.Argument(help="CSV or Parquet: user_id, variant, opened, used.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Import touch outcomes 导入触达结果 (opened / used) for open and use rates."""
    from huaxiang.analysis.outcomes import import_outcomes

    with _errors():
        summary = import_outcomes(workspace, name, file)
        for variant, counts in summary.items():
            out.print(
                f"{escape(variant)}: {counts['rows']:,} 行 rows, 打开 opened {counts['opened']:,}, "
                f"核销 used {counts['used']:,}",
                highlight=False,
            )


def _metrics_table(title: str, rows: list[Any]) -> Table:
    table = Table(title=title)
    for column in (
        "指标 metric",
        "组 variant",
        "用户 users",
        "值 value",
        "差值 diff [95% CI]",
        "提升 lift [95% CI]",
        "p",
    ):
        table.add_column(column, justify="left" if column.startswith(("指标", "组")) else "right")
    for row in rows:
        c = row.comparison
        if c:
            diff = f"{_num(c.difference)} [{_num(c.ci_low)}, {_num(c.ci_high)}]"
        elif row.interval and row.note:  # a rate without a control to compare with: its own interval
            diff = f"[{_num(row.interval[0])}, {_num(row.interval[1])}] {row.note}"
        else:
            diff = row.note or ""
        lift = (
            f"{_pct(c.lift)} [{_pct(c.lift_ci_low)}, {_pct(c.lift_ci_high)}]"
            if c and c.lift is not None
            else ""
        )
        p = (f"{c.p_value:.3g}" + (" *" if c.significant else "")) if c else ""
        table.add_row(
            row.label, escape(row.variant), f"{row.users:,}", _num(row.value), escape(diff), lift, p
        )
    return table


@experiment_app.command("results")
def experiment_results_command(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    workspace: WorkspaceOption = Path("."),
    by: Annotated[str | None, typer.Option(help="An enum tag for the per-segment breakdown.")] = None,
    segment_as_of: DateOption = None,
    until: DateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Results 实验结果: each variant against control, per segment, and the funnel."""
    from huaxiang.analysis.metrics import FUNNEL_STAGES, experiment_results

    with _errors():
        result = experiment_results(
            workspace, name, by=by, segment_as_of=_date(segment_as_of), until=_date(until)
        )
        if as_json:
            _json(result.to_dict())
            return
        out.print(
            f"实验 experiment: {escape(name)} · 触达 touch {result.touch_date} · 窗口 window "
            f"{result.window_days}d · 数据截至 data until {result.data_end}",
            highlight=False,
        )
        out.print(_metrics_table("总体 overall (* p < 0.05)", result.metrics))
        funnel = Table(title="触达后漏斗 follow-up funnel")
        funnel.add_column("组 variant")
        for _, label in FUNNEL_STAGES:
            funnel.add_column(label, justify="right")
        for row in result.funnel:
            rates = row.rates()
            funnel.add_row(
                escape(row.variant),
                *[
                    f"{row.counts[key]:,}" + (f" ({rates[key]:.0%})" if rates.get(key) is not None else "")
                    for key, _ in FUNNEL_STAGES
                ],
            )
        out.print(funnel)
        for segment, rows in result.segments.items():
            out.print(_metrics_table(f"{escape(result.segment_tag or '')} = {escape(segment)}", rows))
        for note in result.notes:
            out.print(f"[yellow]注意 note:[/] {escape(note)}", highlight=False)


@experiment_app.command("list")
def experiment_list(workspace: WorkspaceOption = Path("."), as_json: JsonOption = False) -> None:
    """Saved experiments 实验列表."""
    from huaxiang.analysis.experiments import list_experiments

    with _errors():
        saved = list_experiments(workspace)
        if as_json:
            _json([{"name": s.name, "definition": s.definition, "sizes": s.sizes} for s in saved])
            return
        for item in saved:
            sizes = ", ".join(f"{k} {v:,}" for k, v in (item.sizes or {}).items()) or "未分组 not assigned"
            out.print(f"{escape(item.name)}: {sizes}", highlight=False)


@experiment_app.command("sample-size")
def experiment_sample_size(
    baseline: Annotated[float, typer.Option(help="Control's rate (0.17) or, with --sd, its mean.")],
    mde: Annotated[float, typer.Option(help="Smallest absolute change worth detecting (0.02 = two points).")],
    sd: Annotated[
        float | None, typer.Option(help="Per-user standard deviation: size for a mean metric.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Wanted power.")] = 0.8,
    ratio: Annotated[float, typer.Option(help="Control users per treatment user.")] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """Users needed per group 样本量 to detect an effect."""
    from huaxiang.analysis.stats import sample_size_means, sample_size_proportions

    with _errors():
        if sd is None:
            result = sample_size_proportions(baseline, mde, alpha=alpha, power=power, ratio=ratio)
        else:
            result = sample_size_means(sd, mde, baseline_mean=baseline, alpha=alpha, power=power, ratio=ratio)
        if as_json:
            _json(result.to_dict())
            return
        out.print(
            f"每组样本量 per group: 实验组 treatment {result.n_treatment:,} · 对照组 control "
            f"{result.n_control:,} · 合计 total {result.total:,} (alpha {alpha}, power {power})",
            highlight=False,
        )


# ---------------------------------------------------------------------------- review


def _period(text: str, option: str) -> Any:
    from huaxiang.analysis.campaign import Period

    start, sep, end = text.partition("..")
    if not sep:
        raise typer.BadParameter(f"{option} {text!r}: write START..END, e.g. 2026-11-10..2026-11-15.")
    return Period(parse_date(start.strip()), parse_date(end.strip()))


@review_app.command("campaign")
def review_campaign(
    campaign: Annotated[str, typer.Option(help="Campaign days START..END (inclusive).")],
    baseline: Annotated[str, typer.Option(help="Baseline days START..END (inclusive).")],
    workspace: WorkspaceOption = Path("."),
    by: Annotated[str, typer.Option(help="The enum tag whose values are the segments.")] = "lifecycle_stage",
    segment_as_of: DateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Campaign review 活动复盘: GMV and orders by segment × weekday against a baseline."""
    from huaxiang.analysis.campaign import WEEKDAYS, campaign_review

    with _errors():
        review = campaign_review(
            workspace,
            _period(campaign, "--campaign"),
            _period(baseline, "--baseline"),
            segment_tag=by,
            segment_as_of=_date(segment_as_of),
        )
        if as_json:
            _json(review.to_dict())
            return
        table = Table(title=f"日均GMV增长 growth of per-day GMV: {review.campaign} vs {review.baseline}")
        table.add_column(f"{escape(by)}")
        for label in WEEKDAYS:
            table.add_column(label, justify="right")
        table.add_column("合计 total", justify="right")
        table.add_column("星期匹配 weekday fit", justify="right")
        for segment in review.segments:
            cells = [review.cell(segment.segment, w).growth for w in range(7)]
            table.add_row(
                escape(segment.segment),
                *[_pct(c) for c in cells],
                _pct(segment.gmv_growth),
                "-" if segment.weekday_fit is None else f"{segment.weekday_fit:.0%}",
            )
        out.print(table)
        for finding in review.findings:
            out.print(f"· {escape(finding)}", highlight=False)


@review_app.command("churn")
def review_churn(
    start: Annotated[str, typer.Option(metavar="YYYY-MM-DD", help="First day of churn counted.")],
    end: Annotated[str, typer.Option(metavar="YYYY-MM-DD", help="Last day of churn counted.")],
    workspace: WorkspaceOption = Path("."),
    by: Annotated[str, typer.Option(help="The enum tag whose values are the segments.")] = "lifecycle_stage",
    segment_as_of: DateOption = None,
    churn_days: Annotated[int | None, typer.Option(help="Inactivity days that make a user churned.")] = None,
    activity: Annotated[
        str, typer.Option(help="orders (valid orders) or all (orders and events).")
    ] = "orders",
    as_json: JsonOption = False,
) -> None:
    """Churn by segment per week 流失分析, and the week each segment's churn rose."""
    from huaxiang.analysis.campaign import churn_by_week

    with _errors():
        result = churn_by_week(
            workspace,
            parse_date(start),
            parse_date(end),
            segment_tag=by,
            segment_as_of=_date(segment_as_of),
            churn_days=churn_days,
            activity=activity,
        )
        if as_json:
            _json(result.to_dict())
            return
        table = Table(title=f"每周流失人数 churned users per week (阈值 threshold {result.churn_days}d)")
        table.add_column("周 week (Mon)")
        for segment in result.segments:
            table.add_column(escape(segment.segment), justify="right")
        for index, week in enumerate(result.weeks):
            table.add_row(
                week,
                *[f"{s.weekly[index]:,}" + (" ↑" if s.rise_week == week else "") for s in result.segments],
            )
        out.print(table)
        for finding in result.findings:
            out.print(f"· {escape(finding)}", highlight=False)


# ---------------------------------------------------------------------------- plan, report


def plan_campaign_command(
    workspace: WorkspaceOption = Path("."),
    as_of: DateOption = None,
    playbook: Annotated[
        Path | None, typer.Option(help="A playbook YAML (default: the standard one).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Plan a campaign 活动规划 from the playbook: size, action and coupon threshold per segment."""
    from huaxiang.analysis.playbook import plan_campaign

    with _errors():
        plan = plan_campaign(workspace, as_of=_date(as_of), playbook=playbook)
        if as_json:
            _json(plan.to_dict())
            return
        table = Table(title=f"活动规划 campaign plan · {plan.as_of} · {escape(plan.playbook)}")
        for column in (
            "人群 segment",
            "人数 size",
            "独占 first match",
            "动作 action",
            "消费力 spending power",
            "门槛 threshold",
            "券面额 coupon",
        ):
            table.add_column(column, justify="left" if column.startswith(("人群", "动作")) else "right")
        for row in plan.rows:
            table.add_row(
                f"{escape(row.name_zh)} {escape(row.name_en)}",
                f"{row.size:,}",
                f"{row.assigned:,}",
                f"{escape(row.action_label)}: {escape(row.action_zh)}",
                _num(row.spending_power, 5),
                _num(row.coupon_threshold, 6),
                _num(row.coupon_value, 6),
            )
        out.print(table)
        out.print(f"未覆盖 not covered by any rule: {plan.unassigned:,} / {plan.users:,}", highlight=False)


def report_command(
    workspace: WorkspaceOption = Path("."),
    as_of: DateOption = None,
    compare_to: DateOption = None,
    output: Annotated[
        Path | None, typer.Option(help="The HTML file (default: DIR/reports/report-DATE.html).")
    ] = None,
) -> None:
    """Write the HTML report 报告 (self-contained, works offline)."""
    from huaxiang.analysis.report import build_report

    with _errors():
        path = build_report(workspace, _date(as_of), compare_to=_date(compare_to), output=output)
        out.print(f"已生成 written: {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)


def register(app: typer.Typer) -> None:
    """Mount the analysis commands on the main CLI."""
    app.add_typer(experiment_app, name="experiment")
    app.add_typer(review_app, name="review")
    commands: dict[str, Callable[..., None]] = {
        "plan-campaign": plan_campaign_command,
        "report": report_command,
    }
    for name, function in commands.items():
        app.command(name)(function)
