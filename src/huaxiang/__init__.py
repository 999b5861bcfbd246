"""huaxiang (画像): e-commerce user profiling — tags, segments, audiences and experiments."""

from huaxiang.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["Workspace", "__version__"]
