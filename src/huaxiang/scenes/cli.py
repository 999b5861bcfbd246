"""``huaxiang scenes page|tag-products`` and ``huaxiang evaluate-recs``: thin layers over the library."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from huaxiang.cli_common import WorkspaceOption, out, parse_date, print_error
from huaxiang.errors import HuaxiangError, WorkspaceError
from huaxiang.scenes.tagging import LISTS_DIR, SCENES_DIR, read_scene_list

scenes_app = typer.Typer(
    name="scenes",
    help="Scene pages 场景页面: tag products with scenes, show a scene page as one user sees it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _fail(error: HuaxiangError) -> None:
    print_error(error, "错误 error:")
    raise typer.Exit(2)


@scenes_app.command("page")
def page_command(
    scene: Annotated[str, typer.Argument(help="The scene slug, e.g. outing.")],
    user: Annotated[str, typer.Option("--user", "-u", help="The viewing user's id.")],
    workspace: WorkspaceOption = Path("."),
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="YYYY-MM-DD", help="Snapshot (default latest).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the scene page as USER sees it: each widget's items with score and its parts."""
    from huaxiang.scenes.model import model_for_workspace

    try:
        model = model_for_workspace(workspace, parse_date(as_of) if as_of else None)
        page = model.page(scene, user)
    except HuaxiangError as error:
        _fail(error)
        return
    if as_json:
        out.print_json(json.dumps(page, ensure_ascii=False))
        return
    out.print(
        f"[bold]{page['name_zh']} {page['name_en']}[/] · 用户 user {page['user_id']} · "
        f"场景概率 scene probability {page['scene_probability']:.3f} · 快照 as of {page['as_of']}"
    )
    out.print(f"评分 {page['formula']}", highlight=False)
    for widget in page["widgets"]:
        table = Table(title=f"{widget['title_zh']} {widget['title_en']} ({widget['kind']})")
        for column in (
            "#",
            "item",
            "名称 name",
            "品牌 brand",
            "score",
            "S",
            "P",
            "D",
            "A_cat",
            "A_brand",
            "p·S",
        ):
            table.add_column(column, overflow="fold")
        for item in widget["items"]:
            parts = item["components"]
            key = item.get("product_id") or item.get("coupon_id") or item.get("content_id")
            name = item.get("name") or item.get("name_zh") or item.get("title") or ""
            table.add_row(
                str(item["rank"]),
                str(key),
                str(name),
                str(item.get("brand") or "-"),
                f"{item['score']:.3f}",
                *(
                    f"{parts[c]:.2f}"
                    for c in (
                        "scene_match",
                        "popularity",
                        "discount",
                        "category_affinity",
                        "brand_affinity",
                        "scene_interest",
                    )
                ),
            )
        out.print(table)


@scenes_app.command("tag-products")
def tag_products_command(
    workspace: WorkspaceOption = Path("."),
    list_file: Annotated[
        Path | None,
        typer.Option(
            "--list", help="A CSV product_id,scene[,strength] to check and add to DIR/scenes/lists/."
        ),
    ] = None,
    scene: Annotated[
        str | None, typer.Option("--scene", help="Also list the products of this scene.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Tag products with scenes (own tags, rules in DIR/scenes/rules.yaml, uploaded lists); show counts."""
    from huaxiang.scenes.tagging import summary, tag_products

    try:
        if list_file is not None:
            products = Path(workspace) / "data" / "products.parquet"
            if not products.is_file():
                raise WorkspaceError(
                    f"no products table in {workspace}; run 'huaxiang ingest -w {workspace}' first."
                )
            import pyarrow.parquet as pq

            known = pq.read_table(products, columns=["product_id"]).column(0).to_pylist()
            rows = read_scene_list(list_file, known)
            target = Path(workspace) / SCENES_DIR / LISTS_DIR
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(list_file, target / list_file.name)
            out.print(f"已添加 added {len(rows):,} rows → {target / list_file.name}")
        tagged = tag_products(workspace)
    except HuaxiangError as error:
        _fail(error)
        return
    counts = summary(tagged)
    result: dict[str, Any] = {"scenes": counts}
    if scene is not None:
        chosen = sorted(tagged.get(scene, {}).values(), key=lambda t: (-t.strength, t.key))
        result["products"] = [
            {"product_id": t.key, "strength": t.strength, "source": t.source} for t in chosen
        ]
    if as_json:
        out.print_json(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title="场景商品 products per scene (by the source that gave the strength)")
    for column in ("场景 scene", "own 自带", "rule 规则", "list 名单", "total 合计"):
        table.add_column(column)
    for name, per in counts.items():
        table.add_row(name, *(f"{per[s]:,}" for s in ("own", "rule", "list")), f"{sum(per.values()):,}")
    out.print(table)
    for item in result.get("products", []):
        out.print(f"{item['product_id']}  {item['strength']:.2f}  {item['source']}")


def evaluate_recs_command(
    workspace: WorkspaceOption = Path("."),
    train_days: Annotated[int, typer.Option("--train-days", min=1, help="Days of events to train on.")] = 7,
    test_days: Annotated[int, typer.Option("--test-days", min=1, help="Days after them to test on.")] = 2,
    k: Annotated[int, typer.Option("--k", min=1, max=200, help="Length of each list.")] = 10,
    start: Annotated[
        str | None, typer.Option("--start", metavar="YYYY-MM-DD", help="First training day.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate the recommender against popularity by a time split: hit rate@k, recall@k, coverage."""
    from huaxiang.recs import evaluate_recs

    try:
        result = evaluate_recs(
            workspace,
            train_days=train_days,
            test_days=test_days,
            k=k,
            start=parse_date(start) if start else None,
        )
    except HuaxiangError as error:
        _fail(error)
        return
    if as_json:
        out.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    out.print(
        f"训练 train {result.train_start} .. {result.cutoff} (exclusive) · 测试 test .. {result.test_end} · "
        f"k={result.k} · {result.train_items:,} products in training · {result.seconds:.1f} s"
    )
    table = Table(title="推荐评估 recommendation evaluation (recommender vs popularity)")
    for column in (
        "protocol",
        "users",
        f"hit@{k}",
        f"pop hit@{k}",
        f"recall@{k}",
        f"pop recall@{k}",
        "coverage",
        "pop coverage",
    ):
        table.add_column(column)
    for protocol, model in result.model.items():
        base = result.popularity[protocol]
        table.add_row(
            protocol,
            f"{result.users_tested[protocol]:,}",
            f"{model.hit_rate:.3f}",
            f"{base.hit_rate:.3f}",
            f"{model.recall:.3f}",
            f"{base.recall:.3f}",
            f"{model.coverage:.3f}",
            f"{base.coverage:.3f}",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Mount ``scenes`` and ``evaluate-recs`` on the main CLI."""
    app.add_typer(scenes_app, name="scenes")
    app.command("evaluate-recs")(evaluate_recs_command)
