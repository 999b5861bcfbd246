"""Settings of the tag service (``create_app(settings)``): workspace, limits, real-time tag windows."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from huaxiang.errors import ConfigError

#: Environment variable holding the settings as JSON, for worker processes (``huaxiang serve --workers``).
SETTINGS_ENV = "HUAXIANG_SERVE_SETTINGS"

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

DEFAULT_WINDOWS: dict[str, tuple[str, ...]] = {
    "visit": ("1h", "24h"),
    "view": ("1h", "24h"),
    "search": ("1h",),
    "favorite": ("24h",),
    "cart": ("1h", "24h"),
    "purchase": ("24h",),
}
"""Real-time action counts: ``rt_<event type>_<window>`` for each event type and window."""


def duration_seconds(text: str) -> int:
    """``"30m"`` → 1800: a whole number followed by s, m, h or d."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(
            f"duration {text!r} is not allowed: write a positive whole number and a unit s, m, h or d "
            "(e.g. 30m, 1h, 24h)."
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Settings:
    """What the service needs; every field has a default except the workspace.

    Parameters
    ----------
    workspace
        The workspace folder: snapshots, metadata database, event log, exports.
    database_url
        Metadata database (tokens, audit, saved audiences); default SQLite in ``.huaxiang/``.
    max_body_bytes
        Largest request body accepted (413 above it).
    max_events_per_batch
        Most events one ``POST /events`` may carry.
    watch_interval_s
        How often the online store looks for a newly published snapshot.
    audit_flush_s
        How often buffered audit records are written to the database.
    token_cache_s
        How long a token's row is trusted before it is read again (revocation delay
        for other processes; a revocation in the same process applies at once).
    action_windows
        Real-time action counts by event type (see :data:`DEFAULT_WINDOWS`).
    cart_not_bought_window
        Window of ``rt_cart_not_bought_<window>``: a cart in it with no purchase after.
    events_tail_s
        How often a process reads events other processes appended to the log.
    """

    workspace: Path
    database_url: str | None = None
    max_body_bytes: int = 1_000_000
    max_events_per_batch: int = 1_000
    watch_interval_s: float = 1.0
    audit_flush_s: float = 0.5
    token_cache_s: float = 5.0
    action_windows: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    cart_not_bought_window: str = "1h"
    events_tail_s: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "workspace", Path(self.workspace))
        for windows in self.action_windows.values():
            for window in windows:
                duration_seconds(window)
        duration_seconds(self.cart_not_bought_window)
        if self.max_body_bytes < 1_024:
            raise ConfigError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}.")
        if self.max_events_per_batch < 1:
            raise ConfigError("max_events_per_batch must be at least 1.")

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["workspace"] = str(self.workspace)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        data["action_windows"] = {k: tuple(v) for k, v in data.get("action_windows", {}).items()}
        return cls(**data)

    @classmethod
    def from_env(cls) -> Settings:
        """The settings a parent process put in :data:`SETTINGS_ENV`."""
        text = os.environ.get(SETTINGS_ENV)
        if not text:
            raise ConfigError(f"{SETTINGS_ENV} is not set; start the service with 'huaxiang serve -w DIR'.")
        return cls.from_json(text)
