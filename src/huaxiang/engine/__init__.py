"""The engine: compiles the tag catalog to Ibis and builds snapshots.

:func:`build` is the entry point; model tags reach :mod:`huaxiang.segment`
through the registry of :mod:`huaxiang.engine.registry`.
"""

from __future__ import annotations

from huaxiang.engine.build import BuildResult, Computed, build, compute
from huaxiang.engine.registry import MODEL_MAKERS, ModelContext, ModelMaker, ModelOutput, model_maker
from huaxiang.engine.snapshot import read_manifest, snapshot_path

__all__ = [
    "MODEL_MAKERS",
    "BuildResult",
    "Computed",
    "ModelContext",
    "ModelMaker",
    "ModelOutput",
    "build",
    "compute",
    "model_maker",
    "read_manifest",
    "snapshot_path",
]
