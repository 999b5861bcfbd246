"""The console's two languages: Chinese (default) and English.

Every piece of page text is a key of :data:`MESSAGES` with its Chinese and English
wording; templates call ``t("key")``. The language comes from ``?lang=zh|en`` (which
also sets the ``hx_lang`` cookie), else the cookie, else Chinese. Tag and segment
names come bilingual from the catalog (``name_zh`` / ``name_en``): :func:`pick` chooses.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
LANG_COOKIE = "hx_lang"

MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("画像 控制台", "huaxiang console"),
    "nav.overview": ("概览", "Overview"),
    "nav.catalog": ("标签目录", "Tag catalog"),
    "nav.builder": ("人群圈选", "Audience builder"),
    "nav.segments": ("用户分层", "Segments"),
    "nav.experiments": ("实验", "Experiments"),
    "nav.users": ("用户360", "User 360"),
    "nav.scenes": ("场景页", "Scene pages"),
    "signin.title": ("登录", "Sign in"),
    "signin.token": ("API 令牌", "API token"),
    "signin.help": (
        "用 huaxiang token create -w 工作区 --role analyst 创建令牌，粘贴到这里。",
        "Create a token with huaxiang token create -w WORKSPACE --role analyst and paste it here.",
    ),
    "signin.submit": ("登录", "Sign in"),
    "signin.out": ("退出", "Sign out"),
    "signin.as": ("当前用户", "Signed in as"),
    "signin.failed": ("登录失败", "Sign-in failed"),
    "role.admin": ("管理员", "admin"),
    "role.analyst": ("分析师", "analyst"),
    "role.service": ("服务", "service"),
    "role.merchant": ("商家", "merchant"),
    "snapshot": ("快照日期", "Snapshot"),
    "snapshot.show": ("查看", "Show"),
    "error.title": ("出错了", "Something went wrong"),
    "error.forbidden": ("无权访问", "Not allowed"),
    "error.back": ("返回", "Back to"),
    "lang.switch": ("English", "中文"),
    # Audience builder (pages/builder.py, static/builder.js)
    "builder.help": (
        "从标签目录选标签、设条件，用 且/或/非 组合；人数随条件实时更新。",
        "Pick tags from the catalog, set conditions and combine them with AND / OR / NOT; "
        "the size updates as you go.",
    ),
    "builder.users": ("用户", "users"),
    "builder.merchant_limits": (
        "商家: 仅限授权的标签类目；低于此人数不显示:",
        "Merchant: your tag categories only; sizes withheld below",
    ),
    "builder.conditions": ("圈选条件", "Conditions"),
    "builder.loading": ("正在读取标签目录…", "Loading the tag catalog…"),
    "builder.catalog": ("可用标签", "Tags you may use"),
    "builder.tags": ("个", "tags"),
    "builder.tag": ("标签", "Tag"),
    "builder.pick_tag": ("选择标签", "pick a tag"),
    "builder.operator": ("运算符", "Operator"),
    "builder.pick_value": ("选择取值", "pick a value"),
    "builder.parent": ("上级", "parent"),
    "builder.and": ("至", "and"),
    "builder.not_help": ("取反: 不满足该条件", "Negate: users who do not match"),
    "builder.remove": ("删除", "Remove"),
    "builder.combine": ("组合方式", "Combine with"),
    "builder.all": ("全部满足", "all of"),
    "builder.any": ("任一满足", "any of"),
    "builder.add_condition": ("条件", "condition"),
    "builder.add_group": ("分组", "group"),
    "builder.empty_group": ("空分组: 添加条件", "Empty group: add a condition"),
    "builder.size": ("人数", "Size"),
    "builder.share": ("占比", "Share"),
    "builder.definition": ("定义", "Definition"),
    "builder.withheld": ("不显示", "withheld"),
    "builder.need_definition": ("先设置至少一个完整的条件。", "Set at least one complete condition first."),
    "builder.save": ("保存人群", "Save"),
    "builder.saved_ok": ("已保存", "Saved"),
    "builder.name": ("名称", "Name"),
    "builder.kind": ("类型", "Kind"),
    "builder.kind.dynamic": ("动态", "dynamic"),
    "builder.kind.static": ("静态名单", "static list"),
    "builder.description": ("说明", "Description"),
    "builder.by": ("创建者", "Created by"),
    "builder.saved": ("已保存的人群", "Saved audiences"),
    "builder.none_saved": ("还没有保存的人群。", "No saved audiences yet."),
    "builder.venn": ("画韦恩图", "Draw the Venn diagram"),
    "builder.venn_pick": ("韦恩图", "Venn"),
    "builder.venn_help": (
        "勾选一到两个已保存人群，与当前人群画韦恩图。",
        "Tick one or two saved audiences to compare with the current one in a Venn diagram.",
    ),
    "builder.venn_pick_help": ("请勾选一到两个已保存人群。", "Tick one or two saved audiences."),
    "builder.current": ("当前人群", "current"),
    "builder.region": ("区域", "Region"),
    "builder.union": ("并集", "Union"),
    "builder.top": ("按概率取前 N 名", "Top N by a probability"),
    "builder.top_by": ("排序标签", "Rank by"),
    "builder.ascending": ("从低到高", "lowest first"),
    "builder.top_run": ("取前 N 名", "Get the top N"),
    "builder.top_found": ("成员数", "members"),
    "builder.first": ("显示前", "showing the first"),
    "builder.split": ("拆分实验组与对照组", "Split into test and control"),
    "builder.salt": ("盐值", "Salt"),
    "builder.ratios": ("比例", "Ratios"),
    "builder.group_names": ("组名", "Group names"),
    "builder.split_run": ("拆分", "Split"),
    "builder.group": ("组", "Group"),
    "builder.ratio": ("比例", "Ratio"),
    "builder.export": ("导出", "Export"),
    "builder.file": ("文件名 (.csv / .parquet)", "File name (.csv / .parquet)"),
    "builder.hashed": ("加盐 SHA-256 哈希", "Salted SHA-256 ids"),
    "builder.merchant_hashed": (
        "商家导出总是加盐 SHA-256 哈希。",
        "Merchants always export salted SHA-256 ids.",
    ),
    "builder.overwrite": ("覆盖同名文件", "Overwrite"),
    "builder.exported": ("已导出", "Exported"),
    "builder.rows": ("行", "rows"),
    # User 360 (pages/users.py)
    "users.search": ("查找用户", "Find a user"),
    "users.search_run": ("查找", "Search"),
    "users.search_help": (
        "输入用户 ID 或其中一段 (区分大小写的精确 ID 直接打开)。",
        "Type a user id or part of one (an exact id opens the user).",
    ),
    "users.matches": ("匹配的用户", "Matching users"),
    "users.more": ("只列出前 50 个，请输入更长的 ID。", "Only the first 50 are listed; type more of the id."),
    "users.tags": ("标签 (按类目)", "Tags by category"),
    "users.imputed": ("推断", "imputed"),
    "users.imputed_help": ("值为推断所得 (原始数据缺失)。", "the value was imputed (the source had none)."),
    "users.scenes": ("场景得分", "Scene scores"),
    "users.no_scenes": ("该快照没有场景得分。", "This snapshot has no scene scores."),
    "users.timeline": ("订单与行为时间线", "Orders and events"),
    "users.no_activity": ("这段时间没有订单和行为。", "No orders or events in this period."),
    "users.missing": ("工作区没有的表", "tables the workspace lacks"),
    "users.orders": ("订单", "orders"),
    "users.events": ("行为", "events"),
    "users.by_day": ("按天汇总", "By day"),
    "users.day": ("日期", "Day"),
    "users.amount": ("金额 (元)", "Amount (CNY)"),
    "users.recent_orders": ("最近订单", "Recent orders"),
    "users.time": ("时间", "Time"),
    "users.order": ("订单号", "Order"),
    "users.units": ("件数", "Units"),
    "users.products": ("商品", "Products"),
    "users.after_sale": ("售后", "after-sale"),
    "users.realtime": ("实时标签", "Real-time tags"),
    "users.no_value": ("无值的标签", "Tags without a value"),
    # Scene page preview (pages/scenes.py)
    "scenes.scene": ("场景", "Scene"),
    "scenes.user": ("用户", "User"),
    "scenes.show": ("预览", "Preview"),
    "scenes.help": (
        "场景页按该用户的画像排序 (与 GET /scenes/{scene}/page 相同)。",
        "The scene's page ranked for this user (as GET /scenes/{scene}/page answers).",
    ),
    "scenes.probability": ("场景概率", "Scene probability"),
    "scenes.realtime": ("实时", "real-time"),
    "scenes.holds_tag": ("有场景标签", "Holds the scene tag"),
    "scenes.candidates": ("个候选", "candidates"),
    "scenes.item": ("商品", "Item"),
    "scenes.price": ("价格", "Price"),
    "scenes.score": ("得分", "Score"),
    "scenes.no_items": ("没有可推荐的内容。", "Nothing to show."),
}


def message(key: str, lang: Lang) -> str:
    """The text of ``key`` in ``lang``; an unknown key is a bug, so it raises."""
    zh, en = MESSAGES[key]
    return zh if lang == "zh" else en


def pick(zh: str | None, en: str | None, lang: Lang) -> str:
    """A bilingual name in the chosen language, falling back to the other one."""
    first, second = (zh, en) if lang == "zh" else (en, zh)
    return first or second or ""


def request_lang(request: Request) -> Lang:
    """The language of this request: ``?lang=``, else the cookie, else Chinese."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGS:
            return candidate
    return "zh"
