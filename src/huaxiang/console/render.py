"""Server-side rendering: Jinja2 templates, the page frame (navigation, language, snapshot
picker) and Plotly figures embedded as JSON for ``static/console.js`` to draw.

Charts use Plotly's JavaScript from the installed wheel, served at
``/console/static/plotly.min.js``: no page loads anything from outside the machine.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from huaxiang import __version__
from huaxiang.console.access import visible_pages
from huaxiang.console.i18n import LANG_COOKIE, Lang, message, pick, request_lang
from huaxiang.serve.auth import Principal

ENV = Environment(
    loader=PackageLoader("huaxiang.console", "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)
CJK_FONT = "Noto Sans CJK SC, WenQuanYi Zen Hei, Microsoft YaHei, sans-serif"


def plotly_js_path() -> Path:
    """Plotly's minified JavaScript as shipped in the plotly wheel."""
    return Path(str(resources.files("plotly").joinpath("package_data/plotly.min.js")))


def figure(fig: Any, div_id: str, *, height: int = 420) -> Markup:
    """A Plotly figure as an empty ``div`` carrying the figure's JSON; console.js draws it."""
    fig.update_layout(margin={"l": 60, "r": 30, "t": 60, "b": 50}, height=height, font={"family": CJK_FONT})
    payload = html.escape(fig.to_json(), quote=True)
    return Markup(f'<div class="chart" id="{html.escape(div_id)}" data-figure="{payload}"></div>')


def lang_query(request: Request, lang: str) -> str:
    """This page's query string with ``lang`` set (the language switch's link)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return urlencode([*items, ("lang", lang)])


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    page: str | None = None,
    title: str | None = None,
    status_code: int = 200,
    charts: bool = False,
    **context: Any,
) -> HTMLResponse:
    """Render ``templates/<template>`` inside the frame; sets the language cookie when asked."""
    lang: Lang = request_lang(request)

    def t(key: str) -> str:
        return message(key, lang)

    def bi(zh: str | None, en: str | None) -> str:
        return pick(zh, en, lang)

    body = ENV.get_template(template).render(
        request=request,
        lang=lang,
        t=t,
        bi=bi,
        principal=principal,
        nav=visible_pages(principal) if principal else [],
        page=page,
        title=title or (t(f"nav.{page}") if page else t("app")),
        charts=charts,
        version=__version__,
        json=json.dumps,
        lang_query=lang_query,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", path="/")
    return response
