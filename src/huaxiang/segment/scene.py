"""Scene strength (场景强度, seed 001's 郊游): how strongly a user's recent behaviour points at a scene.

Products and content carry scene slugs in ``scene_tags``. Every search, view,
favorite or cart (any event type given a weight) on a product or content of the
scene adds ``weight × 0.5^(age_days / half_life_days)`` to the user's score for
that scene, ``age_days`` being the (fractional) days from the event to midnight
at the start of the as-of date. A search rarely names a product: it counts for a
scene when its keyword contains one of the scene's words, which are the keywords
given for the scene plus, optionally, the names of the leaf categories
(``category_l3``) all of whose products carry the scene (帐篷 for outing, not 啤酒
whose products only partly do). An event counts through its product when it has
one, else its content, else its keyword: at most once per scene.

The score becomes a probability ``p = 1 − 2^(−score / half_score)``: 0 without
events, 0.5 when the score equals ``half_score``, 0.75 at twice it, approaching 1.
It is monotone in the score, so the top N users by probability are the top N by
score (the seed's push lists). Everything is a lazy Ibis expression.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError
from huaxiang.segment.rfm import day_start

SECONDS_PER_DAY = 86_400
#: Scores are summed in whole billionths: an integer sum is exact, so every engine (and every
#: run of a parallel one) adds the contributions to the same score, whatever their order.
SCORE_UNITS = 1_000_000_000


def scene_probability(score: ir.NumericValue, half_score: float) -> ir.FloatingValue:
    """``1 − 2^(−score / half_score)``: 0 at score 0, 0.5 at ``half_score``, towards 1 above."""
    return 1.0 - ibis.literal(0.5) ** (score.cast("float64") / float(half_score))


def scene_values(products: ir.Table, content: ir.Table | None = None) -> ir.Table:
    """The distinct scene values (column ``scene``) in ``products.scene_tags`` and ``content.scene_tags``."""
    parts = [_unnest_scenes(products)]
    if content is not None and "scene_tags" in content.columns:
        parts.append(_unnest_scenes(content))
    found = ibis.union(*parts, distinct=True)
    return found.filter(found.scene.notnull() & (found.scene != ""))


def _unnest_scenes(table: ir.Table) -> ir.Table:
    return table.select(scene=table.scene_tags.unnest())


def _tagged(table: ir.Table, key: str, scenes: Sequence[str] | None) -> ir.Table:
    """``(key, scene)`` for every scene a product or content carries (distinct)."""
    pairs = table.select(key, scene=table.scene_tags.unnest()).distinct()
    if scenes is not None:
        pairs = pairs.filter(pairs.scene.isin(list(scenes)))
    return pairs


def scene_words(
    products: ir.Table,
    keywords: Mapping[str, Sequence[str]] | None = None,
    scenes: Sequence[str] | None = None,
    search_categories: bool = True,
) -> ir.Table | None:
    """``(scene, word)``: the words whose presence in a search keyword counts the search for the scene.

    The ``keywords`` given per scene, plus (with ``search_categories``) the names
    of the leaf categories (``category_l3``) in which every product carries the
    scene. ``None`` when there are no words at all.
    """
    parts: list[ir.Table] = []
    given = [
        {"scene": scene, "word": word.strip()}
        for scene, words in sorted((keywords or {}).items())
        for word in words
        if scenes is None or scene in scenes
    ]
    if given:
        parts.append(ibis.memtable(given, schema={"scene": "string", "word": "string"}))
    if search_categories and "category_l3" in products.columns:
        leaves = products.filter(products.category_l3.notnull())
        totals = leaves.group_by("category_l3").aggregate(leaf_products=leaves.product_id.nunique())
        tagged = leaves.select("product_id", "category_l3", scene=leaves.scene_tags.unnest()).distinct()
        if scenes is not None:
            tagged = tagged.filter(tagged.scene.isin(list(scenes)))
        carrying = tagged.group_by("category_l3", "scene").aggregate(scene_products=tagged.count())
        full = carrying.inner_join(totals, "category_l3")
        full = full.filter(full.scene_products == full.leaf_products)
        parts.append(full.select("scene", word=full.category_l3))
    if not parts:
        return None
    return ibis.union(*parts, distinct=True)


def scene_events(
    events: ir.Table,
    products: ir.Table,
    *,
    event_types: Sequence[str],
    content: ir.Table | None = None,
    scenes: Sequence[str] | None = None,
    keywords: Mapping[str, Sequence[str]] | None = None,
    search_categories: bool = True,
) -> ir.Table:
    """The events that count for a scene: ``user_id, event_time, event_type, scene``.

    An event of one of ``event_types`` counts through what it is about: its product
    when it has one, else its content, else (a search) the words its keyword contains
    (:func:`scene_words`). The three cases are disjoint and each gives a scene once,
    so an event counts at most once per scene. ``scenes`` restricts the scenes.
    """
    counted = events.filter(events.event_type.isin(list(event_types)))
    has_product = counted.product_id.notnull() if "product_id" in counted.columns else ibis.literal(False)
    has_content = counted.content_id.notnull() if "content_id" in counted.columns else ibis.literal(False)
    columns = ("user_id", "event_time", "event_type", "scene")
    parts: list[ir.Table] = []
    if "product_id" in counted.columns:
        on_product = counted.filter(has_product)
        on_product = on_product.inner_join(_tagged(products, "product_id", scenes), "product_id")
        parts.append(on_product.select(*columns))
    if content is not None and "content_id" in counted.columns and "scene_tags" in content.columns:
        on_content = counted.filter(~has_product & has_content)
        on_content = on_content.inner_join(_tagged(content, "content_id", scenes), "content_id")
        parts.append(on_content.select(*columns))
    words = scene_words(products, keywords, scenes, search_categories)
    if words is not None and "keyword" in counted.columns and "search" in event_types:
        searches = counted.filter(
            (counted.event_type == "search") & counted.keyword.notnull() & ~has_product & ~has_content
        )
        vocabulary = searches.select("keyword").distinct()
        # Match the (few) distinct keywords against the words, then join the searches on equality.
        matches = vocabulary.inner_join(words, vocabulary.keyword.contains(words.word))
        matches = matches.select("keyword", "scene").distinct()
        parts.append(searches.inner_join(matches, "keyword").select(*columns))
    if not parts:
        return counted.filter(ibis.literal(False)).select(*columns[:3], scene=ibis.null("string"))
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def scene_strength(
    events: ir.Table,
    products: ir.Table,
    as_of: dt.date,
    *,
    weights: Mapping[str, float],
    half_life_days: float = 7.0,
    window_days: int | None = 90,
    half_score: float = 5.0,
    content: ir.Table | None = None,
    scenes: Sequence[str] | None = None,
    keywords: Mapping[str, Sequence[str]] | None = None,
    search_categories: bool = True,
) -> ir.Table:
    """Scene score and probability per user and scene, from events strictly before ``as_of``.

    Parameters
    ----------
    events, products, content
        Canonical tables (``content`` optional). Events need ``user_id``,
        ``event_time`` and ``event_type``; ``product_id``, ``content_id`` and
        ``keyword`` are used when present.
    as_of
        Snapshot date; ages are measured to midnight at its start.
    weights
        Weight per event type (``{search: 1, view: 0.5, favorite: 2, cart: 3}``);
        other event types do not count.
    half_life_days
        An event's weight halves every ``half_life_days``.
    window_days
        Only events in the ``window_days`` days before ``as_of`` count (``None``: all).
    half_score
        The score at which the probability is 0.5 (:func:`scene_probability`).
    scenes
        Restrict to these scenes (``None``: every scene in the data).
    keywords, search_categories
        Which searches count (:func:`scene_words`).

    Returns
    -------
    ibis.Table
        ``user_id, scene, scene_events, score, probability``; one row per user and
        scene with at least one counted event (others have score 0, probability 0).
    """
    if not weights:
        raise ConfigError("scene strength needs a weight for at least one event type, e.g. {view: 1}.")
    for event_type, weight in weights.items():
        if not weight > 0:
            raise ConfigError(f"scene weight of {event_type!r} must be positive, got {weight}.")
    if not half_life_days > 0:
        raise ConfigError(f"scene half_life_days must be positive, got {half_life_days}.")
    if not half_score > 0:
        raise ConfigError(f"scene half_score must be positive, got {half_score}.")
    if window_days is not None and window_days < 1:
        raise ConfigError(f"scene window_days must be at least 1, got {window_days}.")
    end = day_start(as_of)
    recent = events.filter(events.event_time < end)
    if window_days is not None:
        recent = recent.filter(recent.event_time >= day_start(as_of - dt.timedelta(days=window_days)))
    counted = scene_events(
        recent,
        products,
        event_types=sorted(weights),
        content=content,
        scenes=scenes,
        keywords=keywords,
        search_categories=search_categories,
    )
    weight = ibis.cases(
        *((counted.event_type == event_type, float(value)) for event_type, value in sorted(weights.items())),
        else_=0.0,
    )
    # Whole seconds: engines count a fraction of a second differently (DuckDB counts second
    # boundaries crossed, Spark whole seconds elapsed); truncated, both give the same age.
    age_days = end.delta(counted.event_time.truncate("s"), unit="second").cast("float64") / SECONDS_PER_DAY
    contribution = weight * ibis.literal(0.5) ** (age_days / float(half_life_days))
    decayed = counted.mutate(units=(contribution * SCORE_UNITS).round().cast("int64"))
    scores = decayed.group_by("user_id", "scene").aggregate(
        scene_events=decayed.count().cast("int64"),
        score=decayed.units.sum().cast("float64") / SCORE_UNITS,
    )
    return scores.mutate(probability=scene_probability(scores.score, half_score))


__all__ = [
    "scene_events",
    "scene_probability",
    "scene_strength",
    "scene_values",
    "scene_words",
]
