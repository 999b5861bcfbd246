"""The canonical data model: the tables every shop's data is mapped onto.

Each column declares its type, whether it is required, what it means and which
standard segmentations need it. ``docs/data-model.md`` is generated from this
module (``huaxiang schema --markdown``) and a test keeps the two identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from huaxiang.errors import ConfigError, did_you_mean

Kind = Literal["string", "int", "float", "decimal", "bool", "timestamp", "date", "enum", "list"]

#: Money is DECIMAL(18, 2): float sums add in different orders on different engines.
MONEY_PRECISION, MONEY_SCALE = 18, 2

EVENT_TYPES = (
    "visit",
    "view",
    "search",
    "click",
    "favorite",
    "cart",
    "cart_remove",
    "purchase",
    "share",
    "ad_click",
    "task",
    "review",
)
GENDERS = ("male", "female", "unknown")
AGE_BANDS = ("0-15", "16-25", "26-35", "36-45", "46-55", "56+")
EDUCATION = ("primary", "secondary", "college", "bachelor", "master", "doctor", "unknown")
MARITAL = ("single", "married", "divorced", "widowed", "unknown")
CONTENT_KINDS = ("article", "video", "live", "image", "other")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    key: bool = False
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    needed_by: tuple[str, ...] = ()

    @property
    def type_label(self) -> str:
        if self.kind == "decimal":
            return f"decimal({MONEY_PRECISION},{MONEY_SCALE})"
        if self.kind == "list":
            return "list<string>"
        return self.kind


@dataclass(frozen=True)
class Table:
    """A canonical table with its columns; ``key`` columns identify a row."""

    name: str
    description: str
    columns: tuple[Column, ...]
    checks: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.key)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise ConfigError(
            f"Table '{self.name}' has no column '{name}'."
            f"{did_you_mean(name, self.column_names)} "
            f"Columns: {', '.join(self.column_names)}."
        )


C = Column

USERS = Table(
    "users",
    "One row per user (customer, member).",
    (
        C("user_id", "string", "Stable user identifier.", required=True, key=True),
        C("register_time", "timestamp", "Sign-up time.", needed_by=("lifecycle",)),
        C("gender", "enum", "Gender.", values=GENDERS, needed_by=("target_group_10", "value_group_15")),
        C("birth_date", "date", "Date of birth; gives age at the as-of date.", needed_by=("age",)),
        C("age", "int", "Age in years when the birth date is unknown.", minimum=0, maximum=120,
          needed_by=("age", "target_group_10")),
        C("real_name_age", "int", "Age from real-name verification (实名认证), preferred first.",
          minimum=0, maximum=120, needed_by=("age",)),
        C("profile_age", "int", "Age the profile model predicts, second choice.",
          minimum=0, maximum=120, needed_by=("age",)),
        C("age_band", "enum", "Age band when only a band is known (e.g. JData `26-35岁`).",
          values=AGE_BANDS, needed_by=("age_band",)),
        C("real_name_city", "string", "City from real-name verification.", needed_by=("city_tier",)),
        C("city", "string", "Resident city.", needed_by=("city_tier",)),
        C("city_tier", "int", "City tier 1 (largest) to 6.", minimum=1, maximum=6,
          needed_by=("city_tier", "target_group_10", "value_grid")),
        C("country", "string", "Country (for shops that sell abroad)."),
        C("education", "enum", "Highest education.", values=EDUCATION),
        C("marital_status", "enum", "Marital status.", values=MARITAL, needed_by=("finance_group_14",)),
        C("child_probability", "float", "Probability the user has a child (0-1).", minimum=0, maximum=1,
          needed_by=("target_group_10",)),
        C("member_level", "int", "Member level (e.g. JD PLUS level 1-5).", minimum=0),
        C("member_score", "int", "Member score (京享值-like).", minimum=0, needed_by=("value_group_15",)),
        C("acquisition_channel", "string", "Where the member came from (plus, E卡, ...)."),
        C("grade_stage", "string", "School grade stage for students (年级阶段).",
          needed_by=("target_group_10",)),
        C("declared_preferences", "list", "Categories chosen at sign-up, for cold start."),
    ),
)

ORDERS = Table(
    "orders",
    "One row per order. After-sale records (售后单) are kept, flagged by `is_after_sale`.",
    (
        C("order_id", "string", "Order identifier.", required=True, key=True),
        C("user_id", "string", "Buyer.", required=True),
        C("order_time", "timestamp", "When the order was placed (shop time zone).", required=True,
          needed_by=("rfm", "lifecycle", "value_grid")),
        C("amount", "decimal", "Amount paid (positive; for after-sale records the amount refunded).",
          required=True, needed_by=("rfm", "purchasing_power", "value_grid")),
        C("is_after_sale", "bool", "True for after-sale / refund / cancellation records.",
          needed_by=("rfm", "purchasing_power")),
        C("refund_amount", "decimal", "Amount refunded, if any."),
        C("coupon_used", "bool", "A coupon was applied.", needed_by=("promo_sensitive",)),
        C("coupon_amount", "decimal", "Coupon value."),
        C("channel", "string", "Sales channel (app, web, mini-program, ...)."),
        C("payment_method", "string", "Payment method."),
        C("ship_city", "string", "Shipping city.", needed_by=("city_tier",)),
        C("ship_city_tier", "int", "Tier of the shipping city (1-6).", minimum=1, maximum=6,
          needed_by=("city_tier",)),
    ),
    checks=("amount > 0", "order_time between 2000-01-01 and now"),
)

ORDER_ITEMS = Table(
    "order_items",
    "One row per order line.",
    (
        C("order_id", "string", "Order.", required=True, key=True),
        C("line_no", "int", "Line number within the order (assigned in source order when absent).",
          key=True),
        C("product_id", "string", "Product.", required=True, needed_by=("category_preference",)),
        C("quantity", "int", "Units (positive; after-sale lines are stored positive).", required=True),
        C("unit_price", "decimal", "Price per unit.", required=True),
        C("discount", "decimal", "Discount on the line."),
        C("is_orphan", "bool", "The order is not in `orders` (kept, flagged)."),
    ),
)

EVENTS = Table(
    "events",
    "Behaviour events: one row per action.",
    (
        C("user_id", "string", "Who acted.", required=True),
        C("event_time", "timestamp", "When (shop time zone).", required=True,
          needed_by=("aipl", "lifecycle", "scene_score")),
        C("event_type", "enum", "What kind of action.", required=True, values=EVENT_TYPES,
          needed_by=("aipl", "action_tags", "scene_score")),
        C("product_id", "string", "Product acted on, if any.", needed_by=("scene_score", "brand_tags")),
        C("keyword", "string", "Search keyword."),
        C("content_id", "string", "Content viewed or shared."),
        C("is_orphan", "bool", "The product is not in `products` (kept, flagged)."),
    ),
)

PRODUCTS = Table(
    "products",
    "The catalogue.",
    (
        C("product_id", "string", "Product (SKU).", required=True, key=True),
        C("name", "string", "Title."),
        C("category_l1", "string", "Top-level category.", needed_by=("category_preference",)),
        C("category_l2", "string", "Second-level category."),
        C("category_l3", "string", "Leaf category."),
        C("brand", "string", "Brand.", needed_by=("brand_tags",)),
        C("shop", "string", "Shop selling it."),
        C("price", "decimal", "List price."),
        C("scene_tags", "list", "Scenes the product belongs to (郊游 outing, ...).",
          needed_by=("scene_score",)),
    ),
)

CONTENT = Table(
    "content",
    "Articles, videos and live streams.",
    (
        C("content_id", "string", "Content identifier.", required=True, key=True),
        C("kind", "enum", "Kind of content.", values=CONTENT_KINDS),
        C("title", "string", "Title."),
        C("scene_tags", "list", "Scenes the content belongs to.", needed_by=("scene_score",)),
        C("product_ids", "list", "Products it links to."),
    ),
)

TOUCHES = Table(
    "touches",
    "Campaign touches: who was reached, with which variant, when.",
    (
        C("campaign_id", "string", "Campaign.", required=True, key=True),
        C("user_id", "string", "User reached.", required=True, key=True),
        C("variant", "string", "Variant or `control`.", required=True),
        C("channel", "string", "SMS, push, EDM, in-app slot, coupon, ..."),
        C("touch_time", "timestamp", "When the touch was sent.", required=True),
        C("opened", "bool", "The touch was opened."),
        C("used", "bool", "The coupon / benefit was used."),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (USERS, ORDERS, ORDER_ITEMS, EVENTS, PRODUCTS, CONTENT, TOUCHES)
}


def table(name: str) -> Table:
    """Return the canonical table called ``name`` or raise a helpful error."""
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(
            f"Unknown canonical table '{name}'.{did_you_mean(name, TABLES)} "
            f"Tables: {', '.join(TABLES)}."
        ) from None


def to_markdown() -> str:
    """Render the model as the Markdown of ``docs/data-model.md``."""
    lines = [
        "# The canonical data model",
        "",
        "<!-- Generated by `huaxiang schema --markdown`; a test keeps it in sync. -->",
        "",
        "Every source is mapped onto these tables by `huaxiang.yaml` (see",
        "`docs/workspace.md`). Identifiers are text (`17850.0` becomes `17850`), money is",
        f"DECIMAL({MONEY_PRECISION},{MONEY_SCALE}), times are naive local times in the workspace",
        "time zone. *Needed by* names the standard tags and segmentations that cannot be",
        "computed without the column: a tag whose inputs are absent is skipped with a message.",
        "",
    ]
    for t in TABLES.values():
        lines += [f"## `{t.name}`", "", t.description, ""]
        if t.key:
            lines += [f"Key: {', '.join(f'`{k}`' for k in t.key)}.", ""]
        lines += ["| column | type | required | meaning | allowed | needed by |", "|---|---|---|---|---|---|"]
        for c in t.columns:
            allowed = ", ".join(f"`{v}`" for v in c.values)
            if c.minimum is not None or c.maximum is not None:
                lo = "" if c.minimum is None else f"{c.minimum:g}"
                hi = "" if c.maximum is None else f"{c.maximum:g}"
                allowed = f"{lo}..{hi}"
            lines.append(
                f"| `{c.name}` | {c.type_label} | {'yes' if c.required else ''} | {c.description} "
                f"| {allowed} | {', '.join(c.needed_by)} |"
            )
        lines.append("")
    return "\n".join(lines)
