"""Model makers: demographics (registered on import).

``demographics`` gives age, age band and city tier with their imputation source
(SPEC item 2), plus the profile columns the group rules read, null when the
workspace lacks them: a rule over a declared tag would be skipped whenever its
column is absent, while these columns are always there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from huaxiang.engine.registry import ModelContext, ModelOutput, model_maker
from huaxiang.segment.demographics import check_city_tiers, demographics_details, demographics_table


@model_maker("demographics", needs=("users.user_id",), params=("city_tiers",))
def demographics(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Age, age band, city tier with sources and imputed flags (:func:`huaxiang.segment.demographics`)."""
    city_tiers = check_city_tiers(params.get("city_tiers"), "model demographics")
    orders = context.tables.get("orders")
    if orders is not None and not {"user_id", "order_time"} <= set(orders.columns):
        orders = None
    table = demographics_table(context.tables["users"], orders, context.as_of, city_tiers=city_tiers)
    return ModelOutput(table, demographics_details(table))
