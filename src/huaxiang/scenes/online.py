"""One :class:`SceneModel` per served snapshot, and the calls the console and the API make.

``scene_page(source, scene, user_id)`` takes a workspace (folder or
:class:`~huaxiang.workspace.Workspace`: its latest snapshot), the service's online store,
or one of its generations, and returns the page as plain data (see
:meth:`SceneModel.page`). Models are cached: per generation of the online store (dropped
with it), and per workspace snapshot version for folders.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huaxiang.errors import NotFoundError
from huaxiang.history import find_snapshot
from huaxiang.scenes.model import SceneModel

if TYPE_CHECKING:
    from huaxiang.serve.store import Generation, OnlineStore

log = logging.getLogger(__name__)

_lock = threading.Lock()
_by_generation: weakref.WeakKeyDictionary[Any, SceneModel] = weakref.WeakKeyDictionary()
_by_folder: dict[tuple[str, str], SceneModel] = {}
#: Online stores whose scene models have been asked for: their new snapshots are warmed on swap.
_used_stores: weakref.WeakSet[Any] = weakref.WeakSet()


def for_generation(generation: Generation) -> SceneModel:
    """The model of a served generation (made on first use; one per generation)."""
    with _lock:
        found = _by_generation.get(generation)
        if found is None:
            # A weak reference: the model must not keep its generation (the cache's key) alive.
            served = weakref.ref(generation)

            def members(definition: str) -> set[str]:
                current = served()
                if current is None:
                    raise NotFoundError("the snapshot of this request was replaced; ask again.")
                with current.audience_lock:
                    engine = current.audiences()
                    return set(engine.user_ids(engine.members(definition)))

            found = SceneModel(generation.workspace, generation.tags.snapshot, audience_members=members)
            _by_generation[generation] = found
            log.info("scene model of %s ready in %.2f s", generation.as_of, found.load_seconds)
        return found


def for_store(store: OnlineStore) -> SceneModel:
    """The model of the store's served generation; from now on the store's new snapshots are
    made ahead (see :func:`warm_on_swap`)."""
    _used_stores.add(store)
    return for_generation(store.current)


def warm_on_swap(store: OnlineStore) -> Callable[[Generation], None]:
    """A listener for ``store.listeners``: once scenes have been asked of the store, each newly
    swapped-in snapshot gets its model made in the watcher thread, before requests need it."""

    def warm(generation: Generation) -> None:
        if store not in _used_stores:
            return
        try:
            for_generation(generation)
        except Exception:  # the next request reports it; never break the swap
            log.exception("could not precompute the scene model of %s", generation.as_of)

    return warm


def for_folder(workspace: str | Path) -> SceneModel:
    """The model of a workspace's latest snapshot (cached until a new snapshot is published)."""
    root = Path(workspace).resolve()
    snapshot = find_snapshot(root, None)
    key = (str(root), os.path.realpath(snapshot.path))
    with _lock:
        found = _by_folder.get(key)
        if found is None:
            for old in [k for k in _by_folder if k[0] == key[0]]:
                _by_folder.pop(old).close()
            found = SceneModel(root, snapshot)
            _by_folder[key] = found
        return found


def scene_model(source: Any) -> SceneModel:
    """The model for a workspace folder, a ``Workspace``, an ``OnlineStore`` or a ``Generation``."""
    if isinstance(source, SceneModel):
        return source
    if hasattr(source, "current") and hasattr(source, "listeners"):  # OnlineStore
        return for_store(source)
    if hasattr(source, "audiences") and hasattr(source, "tags"):  # Generation
        return for_generation(source)
    if hasattr(source, "path") and not isinstance(source, str | Path):  # Workspace
        return for_folder(source.path)
    return for_folder(source)


def scene_page(source: Any, scene: str, user_id: str) -> dict[str, Any]:
    """The page of ``scene`` for ``user_id``: ``{scene, name_zh, name_en, user_id, as_of,
    scene_probability, holds_scene_tag, formula, weights, widgets: [{id, kind, title_zh,
    title_en, weights, items: [{rank, product_id | coupon_id | content_id, ..., score,
    components}]}]}``. Raises NotFoundError (unknown scene or user) or ConfigError (a
    broken page definition)."""
    return scene_model(source).page(scene, user_id)
