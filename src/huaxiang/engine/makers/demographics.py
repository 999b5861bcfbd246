"""Model makers: demographics (registered on import)."""

from __future__ import annotations
