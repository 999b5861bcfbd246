"""Standard model makers beyond RFM, lifecycle and the value grid, one module per room.

Importing this package registers them (``huaxiang.engine.registry`` imports it last).
Each module registers its makers with :func:`huaxiang.engine.registry.model_maker`
and keeps the computation itself in :mod:`huaxiang.segment`.
"""

from huaxiang.engine.makers import behaviour, demographics, models, purchase

__all__ = ["behaviour", "demographics", "models", "purchase"]
