"""The web console: server-rendered pages served by the tag service (``huaxiang serve``).

``install(app)`` adds the pages under ``/console/``, its static files and Plotly's bundled
JavaScript. Pages read the workspace through the library (snapshots, catalog, audiences,
experiments) and the signed-in token's role limits what they show (:mod:`.access`). The
interactive parts (the audience builder) call the service's JSON API from the browser with
the sign-in cookie and the ``x-huaxiang-console`` header. Docs: docs/console.md.
"""

from __future__ import annotations

from huaxiang.console.app import install

__all__ = ["install"]
