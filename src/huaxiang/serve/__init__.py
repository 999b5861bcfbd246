"""The tag service (docs/service.md): ``create_app(Settings(workspace=DIR))`` builds the FastAPI app.

Rooms: ``settings`` (what the service needs), ``store`` (the snapshot in memory, swapped
atomically), ``auth`` (tokens, roles, rate limits), ``audit``, ``events`` (the durable event log,
real-time tags, the fold), ``routes/`` (one module per area), ``app`` (the factory and the one
error shape), ``cli`` (``huaxiang serve | token | audit | events``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huaxiang.serve.settings import Settings

if TYPE_CHECKING:
    from huaxiang.serve.app import create_app

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI is imported only when the app is wanted, not by every `huaxiang` command.
    if name == "create_app":
        from huaxiang.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'huaxiang.serve' has no attribute {name!r}")
