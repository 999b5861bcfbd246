"""Segmentations that need more than a rule: RFM, lifecycle, the value grid and cut points from data.

Functions here take and return Ibis tables (lazy expressions, no engine is touched)
and never import ``huaxiang.engine``: the engine calls them, not the other way round.
See ``docs/segments.md``.
"""

from huaxiang.segment.cuts import CutPointSuggester, column_values
from huaxiang.segment.lifecycle import (
    LIFECYCLE_STAGES,
    churn_threshold_days,
    lifecycle_table,
    lifecycle_thresholds,
    purchase_interval_days,
)
from huaxiang.segment.rfm import RFM_CLASSES, rfm_table
from huaxiang.segment.value_grid import VALUE_LAYER_STRATEGIES, value_grid_table, value_layers

__all__ = [
    "LIFECYCLE_STAGES",
    "RFM_CLASSES",
    "VALUE_LAYER_STRATEGIES",
    "CutPointSuggester",
    "column_values",
    "churn_threshold_days",
    "lifecycle_table",
    "lifecycle_thresholds",
    "purchase_interval_days",
    "rfm_table",
    "value_grid_table",
    "value_layers",
]
