"""The evaluation report of a grouping: sizes, ARPU and its monotonicity, distinguishing features, names.

The seed's acceptance for the fifteen value groups: "聚类结果arpu值单调，类结果可解释"
(ARPU monotone across the groups, each group explainable). For any grouping (the
value groups, k-means, or any enum tag of a snapshot) the report gives

- users, share and ARPU (value per user) of each group, and whether ARPU falls
  monotonically in the group order, or the pairs where it does not;
- the feature values that distinguish each group: share in the group against the
  population, with lift (= share in group ÷ share in population);
- an automatic descriptive name such as ``小镇·女·26-35·高购买力``;
- the persona name a user gave the group (``都市精英成功男``) in a YAML file::

      # personas.yaml
      groups:
        L0: {name_zh: 都市精英成功男, name_en: urban elite successful men}
        L9: 小镇持家安居族            # Chinese name only

The input is a table of cells (one row per group × combination of bands, with
``users`` and ``value``), small whatever the number of users: the engine aggregates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from huaxiang.errors import ConfigError, did_you_mean
from huaxiang.segment.value_features import FEATURE_NAMES, UNKNOWN
from huaxiang.yamlfile import load_yaml, validate_file

#: A feature value distinguishes a group when its share there is at least this ...
MIN_SHARE = 0.2
#: ... and at least this many times its share in the population.
MIN_LIFT = 1.2
#: Distinguishing values listed per group.
TOP_FEATURES = 4
#: Share a group needs for a name part: 都市 / 小镇 (tiers 1-2 / 3-6), 男 / 女, an age band, a power level.
NAME_SHARE = {
    "city_tier": 0.6,
    "gender": 0.6,
    "age_band": 0.4,
    "purchasing_power": 0.5,
    "purchase_band": 0.5,
}
POWER_NAMES = {"high": "高购买力", "mid": "中购买力", "low": "低购买力", "none": "未购买"}
MEASURE_NAMES = {
    "revenue": "ARPU (spend per user)",
    "purchases": "purchases per user (no amounts in the data)",
}


@dataclass(frozen=True)
class FeatureLift:
    """One feature value of a group: its share in the group and in the population, and the lift."""

    feature: str
    value: str
    share_in_group: float
    share_in_population: float
    lift: float


@dataclass(frozen=True)
class GroupSummary:
    """A group in the report."""

    group: str
    users: int
    share: float
    value_per_user: float
    auto_name: str
    persona_zh: str | None = None
    persona_en: str | None = None
    distinguishing: list[FeatureLift] = field(default_factory=list)


@dataclass(frozen=True)
class GroupReport:
    """Sizes, ARPU, monotonicity, distinguishing features and names of every group."""

    measure: str
    features: list[str]
    missing_features: dict[str, str]
    groups: list[GroupSummary]
    monotone: bool
    violations: list[tuple[str, str]]
    """Consecutive groups ``(a, b)`` where ``b`` (later) has a higher ARPU than ``a``."""
    ungrouped_users: int = 0

    def monotonicity_text(self) -> str:
        """One bilingual sentence: monotone, or where not."""
        if self.monotone:
            return "ARPU 单调递减 monotone: each group's value per user is at most the previous group's."
        pairs = ", ".join(f"{a} < {b}" for a, b in self.violations)
        return f"ARPU 非单调 not monotone: a later group has a higher value per user at {pairs}."

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data."""
        data = asdict(self)
        data["violations"] = [list(pair) for pair in self.violations]
        data["monotonicity"] = self.monotonicity_text()
        return data

    def table(self) -> pd.DataFrame:
        """One row per group: users, share, value per user, names and the distinguishing values."""
        rows = [
            {
                "group": g.group,
                "users": g.users,
                "share": g.share,
                "value_per_user": g.value_per_user,
                "auto_name": g.auto_name,
                "persona_zh": g.persona_zh,
                "persona_en": g.persona_en,
                "distinguishing": "; ".join(
                    f"{lift.feature}={lift.value} {lift.share_in_group:.0%} vs {lift.share_in_population:.0%}"
                    f" (x{lift.lift:.1f})"
                    for lift in g.distinguishing
                ),
            }
            for g in self.groups
        ]
        return pd.DataFrame(rows)


def natural_key(label: str) -> tuple[Any, ...]:
    """Sort key that puts ``L2`` before ``L10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(label)))


def evaluate_grid(
    cells: pd.DataFrame,
    features: Sequence[str],
    *,
    measure: str = "revenue",
    order: Sequence[str] | None = None,
    personas: PersonaNames | None = None,
    missing_features: Mapping[str, str] | None = None,
) -> GroupReport:
    """The report of the grouping in ``cells``.

    Parameters
    ----------
    cells
        One row per group and combination of bands: ``group`` (NULL for users
        without one, counted apart), a text column per feature, ``users`` and ``value``.
    features
        The feature columns of ``cells``.
    measure
        ``revenue`` (value is spend: ARPU) or ``purchases``.
    order
        The groups in the order ARPU should fall (default: ``L0``, ``L1``, ... natural order).
    personas
        Persona names given by the user (:func:`load_personas`).
    missing_features
        Features the data lacked, with the reason (shown in the report).
    """
    for column in ("group", "users", "value", *features):
        if column not in cells.columns:
            raise ConfigError(f"group report: the cells have no column {column!r}.")
    cells = cells.assign(value=cells["value"].astype("float64"), users=cells["users"].astype("int64"))
    ungrouped = int(cells.loc[cells["group"].isna(), "users"].sum())
    cells = cells[cells["group"].notna()].assign(group=lambda frame: frame["group"].astype(str))
    per_group = cells.groupby("group", sort=False).agg(users=("users", "sum"), value=("value", "sum"))
    users_of = {str(k): int(v) for k, v in per_group["users"].items()}
    value_of = {str(k): float(v) for k, v in per_group["value"].items()}
    names = list(users_of)
    if order is None:
        ordered = sorted(names, key=natural_key)
    else:
        ordered = [str(g) for g in order if str(g) in users_of]
        ordered += sorted((g for g in names if g not in ordered), key=natural_key)
    if personas is not None:
        personas.check(ordered)
    total_users = sum(users_of.values())
    population = {name: _shares(cells, name, None) for name in features}
    groups: list[GroupSummary] = []
    for group in ordered:
        users = users_of[group]
        inside = cells[cells["group"] == group]
        shares = {name: _shares(inside, name, users) for name in features}
        lifts = [
            FeatureLift(name, value, share, population[name][value], share / population[name][value])
            for name in features
            for value, share in shares[name].items()
            if value != UNKNOWN and population[name][value] > 0
        ]
        picked = sorted(
            (lift for lift in lifts if lift.share_in_group >= MIN_SHARE and lift.lift >= MIN_LIFT),
            key=lambda lift: (-lift.lift, lift.feature, lift.value),
        )[:TOP_FEATURES]
        persona = personas.groups.get(group) if personas is not None else None
        groups.append(
            GroupSummary(
                group=group,
                users=users,
                share=users / total_users if total_users else 0.0,
                value_per_user=value_of[group] / users if users else 0.0,
                auto_name=auto_name(shares),
                persona_zh=persona.name_zh if persona is not None else None,
                persona_en=persona.name_en if persona is not None else None,
                distinguishing=picked,
            )
        )
    violations = [
        (a.group, b.group)
        for a, b in zip(groups, groups[1:], strict=False)
        if b.value_per_user > a.value_per_user + 1e-9 * max(1.0, abs(a.value_per_user))
    ]
    return GroupReport(
        measure=measure,
        features=list(features),
        missing_features=dict(missing_features or {}),
        groups=groups,
        monotone=not violations,
        violations=violations,
        ungrouped_users=ungrouped,
    )


def _shares(cells: pd.DataFrame, feature: str, users: int | None) -> dict[str, float]:
    counts = cells.groupby(feature, sort=True)["users"].sum()
    total = users if users is not None else int(counts.sum())
    return {str(value): float(count) / total if total else 0.0 for value, count in counts.items()}


def auto_name(shares: Mapping[str, Mapping[str, float]]) -> str:
    """A descriptive name from a group's feature shares, e.g. ``小镇·女·26-35·高购买力``.

    Parts, each only when clear enough (:data:`NAME_SHARE`): 都市 (tiers 1-2) or 小镇
    (tiers 3-6); 女 or 男; the leading age band; the leading purchasing power (or,
    without purchasing power, 未购买 / 高频购买 from the purchase bands).
    Nothing clear: ``大众``.
    """
    parts: list[str] = []
    tiers = shares.get("city_tier")
    if tiers:
        urban = sum(share for tier, share in tiers.items() if tier in ("1", "2"))
        town = sum(share for tier, share in tiers.items() if tier in ("3", "4", "5", "6"))
        if urban >= NAME_SHARE["city_tier"]:
            parts.append("都市")
        elif town >= NAME_SHARE["city_tier"]:
            parts.append("小镇")
    gender = shares.get("gender")
    if gender:
        if gender.get("female", 0.0) >= NAME_SHARE["gender"]:
            parts.append("女")
        elif gender.get("male", 0.0) >= NAME_SHARE["gender"]:
            parts.append("男")
    for feature in ("age_band", "purchasing_power", "purchase_band"):
        if feature == "purchase_band" and "purchasing_power" in shares:
            break
        known = {value: share for value, share in shares.get(feature, {}).items() if value != UNKNOWN}
        if not known:
            continue
        value, share = max(known.items(), key=lambda item: (item[1], item[0]))
        if share < NAME_SHARE[feature]:
            continue
        if feature == "age_band":
            parts.append(value)
        elif feature == "purchasing_power":
            parts.append(POWER_NAMES[value])
        elif value == "0":
            parts.append("未购买")
        elif value == max(known, key=natural_key):
            parts.append("高频购买")
    return "·".join(parts) or "大众"


# ---------------------------------------------------------------------------- persona names


class PersonaName(BaseModel):
    """The persona name a user gives a group (中文 first)."""

    model_config = ConfigDict(extra="forbid")
    name_zh: str = Field(min_length=1)
    name_en: str | None = None
    note: str | None = None


class PersonaNames(BaseModel):
    """``groups``: group label → persona name (a plain string is the Chinese name)."""

    model_config = ConfigDict(extra="forbid")
    groups: dict[str, PersonaName]
    _origin: str = PrivateAttr(default="personas")

    @field_validator("groups", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): {"name_zh": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    def check(self, groups: Sequence[str]) -> None:
        """Every named group must exist in the grouping: a ConfigError names the file and the key."""
        for key in self.groups:
            if key not in groups:
                raise ConfigError(
                    f"{self._origin}: groups.{key}: no such group in this grouping."
                    f"{did_you_mean(key, groups)} Groups: {', '.join(groups)}."
                )


def load_personas(path: str | Path) -> PersonaNames:
    """Read a persona-name file (see the module doc); errors name the file, line and field."""
    file = Path(path)
    data, node = load_yaml(file)
    names = validate_file(file, PersonaNames, data, node)
    names._origin = file.name
    return names


def persona_template(report: GroupReport) -> str:
    """A persona file to edit: every group with its automatic name as the starting point."""
    lines = [
        "# Persona names of the groups (画像人群命名). Edit name_zh / name_en; delete a line to leave",
        "# a group unnamed. Seed examples: L0 都市精英成功男, L3 育儿爱美女主人, L4 消费新锐Z时代,",
        "# L9 小镇持家安居族.",
        "groups:",
    ]
    for group in report.groups:
        entry = {"name_zh": group.persona_zh or group.auto_name}
        if group.persona_en:
            entry["name_en"] = group.persona_en
        text = yaml.safe_dump(entry, allow_unicode=True, default_flow_style=True).strip()
        lines.append(f"  {group.group}: {text}  # {group.users} users, {group.value_per_user:.2f} per user")
    return "\n".join(lines) + "\n"


def feature_label(feature: str) -> str:
    """``年龄段 age band``: the bilingual name of a feature."""
    zh, en = FEATURE_NAMES.get(feature, (feature, feature))
    return f"{zh} {en}"


__all__ = [
    "FeatureLift",
    "GroupReport",
    "GroupSummary",
    "MEASURE_NAMES",
    "PersonaName",
    "PersonaNames",
    "auto_name",
    "evaluate_grid",
    "feature_label",
    "load_personas",
    "natural_key",
    "persona_template",
]
