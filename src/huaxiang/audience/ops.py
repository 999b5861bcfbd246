"""Operations on audiences (bitmaps of dense ids): Venn regions, exclusion, top N, splits, samples."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyroaring import BitMap

from huaxiang.audience.errors import AudienceError, EmptyAudienceError
from huaxiang.audience.index import SnapshotIndex, bitmap_of, ids_of
from huaxiang.errors import did_you_mean

MAX_VENN = 3
MAX_STRATA = 100
TOP_WINDOW = 65_536
"""Positions top N scans first at the end of a sorted number array (grown 4x until enough)."""


def require_members(members: BitMap, what: str, index: SnapshotIndex) -> None:
    """Raise :class:`EmptyAudienceError` when an operation that needs members gets none."""
    if not members:
        raise EmptyAudienceError(
            f"the audience is empty (0 of {index.users:,} users match), so there is nothing to {what}. "
            "Loosen a condition (check each one's size with 'huaxiang audience estimate')."
        )


# ---------------------------------------------------------------------------- Venn


@dataclass(frozen=True)
class Venn:
    """Sizes of 2-3 audiences and of every region of their Venn diagram.

    ``regions`` maps a membership pattern (``(True, False, True)``: in the first
    and third, not the second) to its size; every pattern but all-False is listed.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    regions: dict[tuple[bool, ...], int]
    union: int
    users: int

    def region_label(self, pattern: tuple[bool, ...]) -> str:
        inside = [name for name, flag in zip(self.names, pattern, strict=True) if flag]
        outside = [name for name, flag in zip(self.names, pattern, strict=True) if not flag]
        label = " ∩ ".join(inside)
        return f"{label} − {' − '.join(outside)}" if outside else label

    def to_dict(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "sizes": dict(zip(self.names, self.sizes, strict=True)),
            "union": self.union,
            "users": self.users,
            "regions": [
                {"in": [n for n, f in zip(self.names, p, strict=True) if f], "size": s}
                for p, s in self.regions.items()
            ],
        }


def venn(audiences: Sequence[BitMap], names: Sequence[str], users: int) -> Venn:
    """All region counts of the Venn diagram of two or three audiences."""
    if not 2 <= len(audiences) <= MAX_VENN:
        raise AudienceError(f"a Venn diagram takes 2 or 3 audiences, got {len(audiences)}.")
    if len(set(names)) != len(names):
        raise AudienceError(f"the audiences of a Venn diagram need distinct names, got {', '.join(names)}.")
    regions: dict[tuple[bool, ...], int] = {}
    for pattern in itertools.product((True, False), repeat=len(audiences)):
        if not any(pattern):
            continue
        inside = [a for a, flag in zip(audiences, pattern, strict=True) if flag]
        outside = [a for a, flag in zip(audiences, pattern, strict=True) if not flag]
        region = BitMap.intersection(*inside) if len(inside) > 1 else inside[0]
        if outside:
            region = region - (BitMap.union(*outside) if len(outside) > 1 else outside[0])
        regions[pattern] = len(region)
    union = BitMap.union(*audiences)
    return Venn(tuple(names), tuple(len(a) for a in audiences), regions, len(union), users)


def exclude(base: BitMap, *others: BitMap) -> BitMap:
    """Members of ``base`` in none of ``others`` (an exclusion list)."""
    if not others:
        return BitMap(base)
    return base - (BitMap.union(*others) if len(others) > 1 else others[0])


# ---------------------------------------------------------------------------- top N


def top_n(index: SnapshotIndex, members: BitMap, tag: str, n: int, *, descending: bool = True) -> pa.Table:
    """The ``n`` members with the highest (or lowest) value of a number or probability tag.

    Exact: members without a value are left out; ties are broken by ``user_id``
    (ascending), so the same snapshot always gives the same list. Columns:
    ``rank`` (1-based), ``user_id``, ``tag``.
    """
    if n < 1:
        raise AudienceError(f"top N needs N >= 1, got {n}.")
    spec = index.specs.get(tag)
    if spec is None:
        raise AudienceError(f"unknown tag '{tag}' to rank by.{did_you_mean(tag, index.specs)}")
    if spec.kind != "number":
        numbers = [name for name, s in index.specs.items() if s.kind == "number"]
        raise AudienceError(
            f"top N ranks by a number or probability tag; '{tag}' is {spec.type}."
            f"{did_you_mean(tag + '_score', numbers)}"
        )
    require_members(members, "rank", index)
    values, ids = index.numbers(tag)
    mask = np.zeros(index.users, dtype=bool)
    mask[ids_of(members)] = True
    kept_values, kept_ids = _ranking_window(values, ids, mask, n, descending=descending)
    if len(kept_values) == 0:
        raise EmptyAudienceError(
            f"no member of the audience has a value of '{tag}', so there is nothing to rank."
        )
    take = min(n, len(kept_values))
    keys = -kept_values if descending else kept_values
    ranked = np.lexsort((kept_ids, keys))[:take]
    user_ids = index.user_ids.take(pa.array(kept_ids[ranked]))
    scores = index.number_values(tag, kept_values[ranked])
    column = pa.array(scores) if index.entry(tag).get("scale") is None else pa.array(scores, pa.float64())
    return pa.table({"rank": pa.array(np.arange(1, take + 1), pa.int64()), "user_id": user_ids, tag: column})


def _ranking_window(
    values: npt.NDArray[Any],
    ids: npt.NDArray[np.uint32],
    mask: npt.NDArray[np.bool_],
    n: int,
    *,
    descending: bool,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint32]]:
    """Values and ids of the members in the smallest window at the top (or bottom) of the
    sorted arrays that holds ``n`` members (from the top: and every member tied with the n-th),
    so ranking the window ranks the whole audience; everything when there are fewer than ``n``.
    The window grows 4x at a time from ``max(4n, TOP_WINDOW)`` positions, so a short list never
    scans the whole array."""
    size = len(values)
    window = min(size, max(4 * n, TOP_WINDOW))
    while True:
        begin, end = (size - window, size) if descending else (0, window)
        found = np.flatnonzero(mask[ids[begin:end]]) + begin
        if len(found) >= n:
            cut = values[found[-n]] if descending else values[found[n - 1]]
            # Within a value, ids ascend: from the bottom, the first n members are the answer;
            # from the top, the window holds the largest ids of a tie, so all of it must be in.
            if not descending or begin == 0 or values[begin - 1] != cut:
                break
        elif window == size:
            break
        window = min(size, window * 4)
    return np.asarray(values[found]), np.asarray(ids[found])


# ---------------------------------------------------------------------------- split


def unit_hash(user_ids: Sequence[str], salt: str) -> npt.NDArray[np.float64]:
    """A stable number in [0, 1) per user: the first 53 bits of SHA-256(salt, 0x1F, user id)."""
    prefix = salt.encode("utf-8") + b"\x1f"
    sha256 = hashlib.sha256
    heads = b"".join([sha256(prefix + user_id.encode("utf-8")).digest()[:8] for user_id in user_ids])
    # The top 53 bits: exactly representable, so the number is always below 1.
    return (np.frombuffer(heads, dtype=">u8") >> np.uint64(11)).astype(np.float64) / 2.0**53


@dataclass(frozen=True)
class Split:
    """Groups of a split: ``assignment`` has ``user_id`` and ``group`` (ordered by user_id)."""

    names: tuple[str, ...]
    ratios: tuple[float, ...]
    salt: str
    stratify: str | None
    groups: dict[str, BitMap]
    assignment: pa.Table

    def sizes(self) -> dict[str, int]:
        return {name: len(self.groups[name]) for name in self.names}


def normalise_ratios(
    ratios: Sequence[float], names: Sequence[str] | None
) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """Positive weights scaled to sum to 1 (``9, 1`` -> ``0.9, 0.1``), and the group names."""
    if len(ratios) < 2:
        raise AudienceError(f"a split needs at least two groups, got {len(ratios)} ratio(s).")
    if any(not np.isfinite(r) or r <= 0 for r in ratios):
        raise AudienceError(f"split ratios must be positive numbers, got {', '.join(map(str, ratios))}.")
    total = float(sum(ratios))
    scaled = tuple(float(r) / total for r in ratios)
    if names is None:
        names = (
            ("treatment", "control")
            if len(ratios) == 2
            else tuple(f"group_{i + 1}" for i in range(len(ratios)))
        )
    if len(names) != len(ratios):
        raise AudienceError(f"{len(names)} group names for {len(ratios)} ratios; give one name per ratio.")
    if len(set(names)) != len(names):
        raise AudienceError(f"group names must differ, got {', '.join(names)}.")
    return scaled, tuple(names)


def split(
    index: SnapshotIndex,
    members: BitMap,
    ratios: Sequence[float],
    salt: str,
    *,
    names: Sequence[str] | None = None,
    stratify: str | None = None,
) -> Split:
    """Split the members into groups with the given ratios, stably.

    Unstratified, a user's group depends only on ``salt`` and their user id
    (``unit_hash`` against the cumulative ratios): the same user lands in the
    same group in every run and every snapshot, and group shares hold within
    sampling error. With ``stratify`` (a boolean, enum or integer tag), the members of each
    value (and the members without one) are ordered by the same hash and cut at
    the ratios, so every stratum is split in exactly the given proportions (±1
    user); a user then keeps their group as long as their stratum's membership
    does not change.
    """
    if not salt:
        raise AudienceError(
            "a split needs a salt (e.g. the experiment id), so that it is stable and private."
        )
    scaled, group_names = normalise_ratios(ratios, names)
    require_members(members, "split", index)
    member_ids = ids_of(members)
    user_ids = index.user_ids.take(pa.array(member_ids)).to_pylist()
    units = unit_hash(user_ids, salt)
    bounds = np.cumsum(scaled)
    bounds[-1] = 1.0
    if stratify is None:
        group_of = np.searchsorted(bounds, units, side="right")
    else:
        group_of = np.empty(len(member_ids), dtype=np.int64)
        for stratum in _strata(index, stratify, members):
            positions = np.flatnonzero(np.isin(member_ids, ids_of(stratum)))
            order = positions[np.lexsort((positions, units[positions]))]
            cuts = np.floor(bounds * len(order) + 0.5).astype(np.int64)
            starts = np.concatenate([[0], cuts[:-1]])
            for group, (begin, end) in enumerate(zip(starts, cuts, strict=True)):
                group_of[order[begin:end]] = group
    groups = {name: bitmap_of(member_ids[group_of == g]) for g, name in enumerate(group_names)}
    labels = pa.array(np.asarray(group_names, dtype=object)[group_of].tolist(), pa.string())
    assignment = pa.table({"user_id": pa.array(user_ids, pa.string()), "group": labels})
    return Split(group_names, scaled, salt, stratify, groups, assignment)


def _strata(index: SnapshotIndex, tag: str, members: BitMap) -> list[BitMap]:
    spec = index.specs.get(tag)
    if spec is None:
        raise AudienceError(f"unknown tag '{tag}' to stratify by.{did_you_mean(tag, index.specs)}")
    if spec.type == "integer":
        values, ids = index.numbers(tag)
        distinct = np.unique(values)
        if len(distinct) > MAX_STRATA:
            raise AudienceError(
                f"'{tag}' has {len(distinct):,} distinct values; stratify by at most {MAX_STRATA} "
                "(use a banded tag, e.g. an *_band tag)."
            )
        bounds = np.searchsorted(values, distinct, "left").tolist() + [len(values)]
        pieces = [bitmap_of(np.sort(ids[a:b])) & members for a, b in zip(bounds, bounds[1:], strict=False)]
        return [piece for piece in [*pieces, index.null(tag) & members] if piece]
    if spec.kind == "number":
        raise AudienceError(
            f"stratify by a boolean, enum or integer tag; '{tag}' is {spec.type} "
            "(use a banded tag, e.g. an *_band tag)."
        )
    stored = list(index.value_counts(tag))
    leaves = [v for v in stored if not any(other.startswith(v + "/") for other in stored)]
    strata = [index.value(tag, value) & members for value in leaves]
    strata.append(index.null(tag) & members)
    return [stratum for stratum in strata if stratum]


# ---------------------------------------------------------------------------- sample


def sample(
    index: SnapshotIndex,
    tags_path: Path,
    members: BitMap,
    n: int,
    tags: Sequence[str],
    *,
    seed: int = 0,
) -> pa.Table:
    """Up to ``n`` random members (reproducible with ``seed``) with their values of ``tags``, by user_id."""
    if n < 1:
        raise AudienceError(f"a sample needs n >= 1, got {n}.")
    require_members(members, "sample", index)
    unknown = [tag for tag in tags if tag not in index.specs]
    if unknown:
        raise AudienceError(f"unknown tag '{unknown[0]}' to show.{did_you_mean(unknown[0], index.specs)}")
    member_ids = ids_of(members)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(member_ids, size=min(n, len(member_ids)), replace=False))
    wanted = index.user_ids.take(pa.array(chosen))
    columns = ["user_id", *dict.fromkeys(tags)]
    table = pq.read_table(tags_path, columns=columns, filters=pc.field("user_id").isin(wanted))
    return table.sort_by("user_id")
