"""One user's tags in a snapshot, grouped by category, with imputed values flagged: ``huaxiang profile``.

Names, categories and declared value labels come from the snapshot's own
manifest (``definitions``), so a profile shows what the tags meant when they
were built; for an older manifest without them, the current catalog is used.

**Imputed values.** A tag ``X`` is shown as imputed for a user when the snapshot
has a boolean tag ``X_imputed`` that is true for that user (``age`` /
``age_imputed``, ``city_tier`` / ``city_tier_imputed``). A tag made from an
imputed one is flagged through :data:`IMPUTED_BY` (``age_band`` is imputed when
``age_imputed`` is true). The flag tags themselves are listed like any other tag.
"""

from __future__ import annotations

import bisect
import datetime as dt
import difflib
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from huaxiang.catalog import CATEGORY_LABELS_ZH, Catalog, Category
from huaxiang.errors import NotFoundError
from huaxiang.history import Snapshot, find_snapshot

#: Suffix of the boolean tag that says tag X was imputed for a user: ``X_imputed``.
IMPUTED_SUFFIX = "_imputed"
#: Tags made from an imputed tag, and the flag that says so (beyond the ``X_imputed`` convention).
IMPUTED_BY: dict[str, str] = {"age_band": "age_imputed"}
#: How many ids around a misspelt one are compared for a "did you mean".
_NEIGHBOURS = 50
#: Up to this many users, every id is compared for a "did you mean".
_COMPARE_ALL = 20_000


@dataclass(frozen=True)
class ProfileEntry:
    """One tag of the user: its names, type, value (``None`` when the user has none) and flags."""

    tag: str
    name_zh: str
    name_en: str
    type: str
    value: Any
    value_zh: str | None = None
    """The declared Chinese label of an enum value (``新客`` for ``new``), when the catalog gives one."""
    imputed: bool = False


@dataclass(frozen=True)
class ProfileGroup:
    """The user's tags of one category (SPEC order), tags in build order."""

    category: str
    label_zh: str
    entries: list[ProfileEntry]


@dataclass(frozen=True)
class UserProfile:
    """Every tag of one user in the snapshot of ``as_of``."""

    user_id: str
    as_of: dt.date
    groups: list[ProfileGroup]

    def entry(self, tag: str) -> ProfileEntry:
        for group in self.groups:
            for item in group.entries:
                if item.tag == tag:
                    return item
        raise NotFoundError(f"no tag '{tag}' in the profile of user '{self.user_id}'.")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (what ``huaxiang profile --json`` prints); decimals become numbers."""
        return {
            "user_id": self.user_id,
            "as_of": self.as_of.isoformat(),
            "groups": [
                {**asdict(group), "entries": [{**asdict(e), "value": _plain(e.value)} for e in group.entries]}
                for group in self.groups
            ],
        }


def profile(
    workspace_dir: str | Path,
    user_id: str,
    *,
    as_of: dt.date | None = None,
    catalog: Catalog | None = None,
) -> UserProfile:
    """All tags of ``user_id`` in the snapshot of ``as_of`` (the latest by default).

    ``catalog`` labels the tags of a snapshot whose manifest predates ``definitions``.

    Raises
    ------
    huaxiang.errors.NotFoundError
        No snapshot (or none for ``as_of``), or no such user in it: the message
        suggests close ids and says what ids look like.
    """
    snapshot = find_snapshot(workspace_dir, as_of)
    rows = pq.read_table(snapshot.tags_path, filters=[("user_id", "==", user_id)]).to_pylist()
    if not rows:
        raise NotFoundError(_unknown_user(snapshot, user_id))
    row = rows[0]
    groups: dict[str, list[ProfileEntry]] = {}
    for tag in snapshot.tags:
        meta = _meta(snapshot, tag, catalog)
        value = row[tag]
        flag = f"{tag}{IMPUTED_SUFFIX}" if f"{tag}{IMPUTED_SUFFIX}" in row else IMPUTED_BY.get(tag)
        imputed = bool(flag is not None and row.get(flag) is True)
        labels = {item["value"]: item.get("name_zh") for item in meta.get("values", [])}
        entry = ProfileEntry(
            tag=tag,
            name_zh=meta.get("name_zh", tag),
            name_en=meta.get("name_en", tag),
            type=meta.get("type") or snapshot.tag_type(tag),
            value=value,
            value_zh=labels.get(value) if isinstance(value, str) else None,
            imputed=imputed,
        )
        groups.setdefault(meta.get("category", Category.custom.value), []).append(entry)
    labels_zh = {category.value: CATEGORY_LABELS_ZH[category] for category in Category}
    ordered = [name for name in labels_zh if name in groups] + sorted(set(groups) - set(labels_zh))
    return UserProfile(
        user_id=user_id,
        as_of=snapshot.as_of,
        groups=[ProfileGroup(name, labels_zh.get(name, name), groups[name]) for name in ordered],
    )


def _meta(snapshot: Snapshot, tag: str, catalog: Catalog | None) -> dict[str, Any]:
    recorded = snapshot.definition(tag)
    if recorded or catalog is None or tag not in catalog.tags:
        return recorded
    definition = catalog.tags[tag]
    meta: dict[str, Any] = {
        "name_zh": definition.name_zh,
        "name_en": definition.name_en,
        "category": definition.category.value,
        "type": definition.type,
    }
    if definition.values is not None:
        meta["values"] = [value.model_dump(exclude_none=True) for value in definition.values]
    return meta


def _unknown_user(snapshot: Snapshot, user_id: str) -> str:
    ids: list[str] = sorted(pq.read_table(snapshot.tags_path, columns=["user_id"]).column(0).to_pylist())
    where = f"no user '{user_id}' in the snapshot of {snapshot.as_of} ({len(ids):,} users)."
    if not ids:
        return where + " The snapshot has no users."
    folded = {item.casefold(): item for item in ids}
    if user_id.casefold() in folded:
        return f"{where} Did you mean '{folded[user_id.casefold()]}'? (user ids are case-sensitive)"
    padded = _same_number(user_id, ids)
    if padded is not None:
        return f"{where} Did you mean '{padded}'? User ids look like {ids[0]} … {ids[-1]}."
    if len(ids) <= _COMPARE_ALL:
        candidates = ids
    else:
        at = bisect.bisect_left(ids, user_id)
        candidates = ids[max(0, at - _NEIGHBOURS) : at + _NEIGHBOURS]
    close = difflib.get_close_matches(user_id, candidates, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{where}{hint} User ids look like {ids[0]} … {ids[-1]}."


_NUMBERED = re.compile(r"^(\D*)(\d+)$")


def _same_number(user_id: str, ids: list[str]) -> str | None:
    """The id with the same number written the way the snapshot writes ids (``1``, ``U1`` and
    ``U0000001`` all mean ``U00000001``), when it exists."""
    given, shape = _NUMBERED.match(user_id), _NUMBERED.match(ids[0])
    if given is None or shape is None:
        return None
    prefix = given.group(1)
    if not prefix or prefix.casefold() == shape.group(1).casefold():
        prefix = shape.group(1)
    candidate = prefix + str(int(given.group(2))).zfill(len(shape.group(2)))
    at = bisect.bisect_left(ids, candidate)
    return candidate if at < len(ids) and ids[at] == candidate and candidate != user_id else None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
