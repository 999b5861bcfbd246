"""Model makers: behaviour (registered on import)."""

from __future__ import annotations
