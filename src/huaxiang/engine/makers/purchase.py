"""Model makers: purchase (registered on import)."""

from __future__ import annotations
