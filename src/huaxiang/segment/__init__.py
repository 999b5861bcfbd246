"""Segmentations that need more than a rule: RFM and lifecycle so far.

Functions here take and return Ibis tables (lazy expressions, no engine is touched)
and never import ``huaxiang.engine``: the engine calls them, not the other way round.
See ``docs/segments.md``.
"""

from huaxiang.segment.lifecycle import (
    LIFECYCLE_STAGES,
    churn_threshold_days,
    lifecycle_table,
    lifecycle_thresholds,
    purchase_interval_days,
)
from huaxiang.segment.rfm import RFM_CLASSES, rfm_table

__all__ = [
    "LIFECYCLE_STAGES",
    "RFM_CLASSES",
    "churn_threshold_days",
    "lifecycle_table",
    "lifecycle_thresholds",
    "purchase_interval_days",
    "rfm_table",
]
