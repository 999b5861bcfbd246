"""The deterministic sample shop: canonical tables with planted, documented structure.

See ``docs/sample-shop.md``. ``generate_sample(out_dir)`` writes the Parquet
files, ``truth.parquet`` (the planted answer per user) and ``planted.json``.
"""

from huaxiang.datasets.sample.generate import (
    CHUNK_USERS,
    OUTPUT_TABLES,
    SampleSummary,
    generate_sample,
)

__all__ = ["CHUNK_USERS", "OUTPUT_TABLES", "SampleSummary", "generate_sample"]
