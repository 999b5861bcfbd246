"""Wiring: sign-in and sign-out, the static files, error pages, and each page's router."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from huaxiang.console.access import SignInRequired, first_page, viewer
from huaxiang.console.render import plotly_js_path, render
from huaxiang.errors import HuaxiangError
from huaxiang.serve.auth import AuthError
from huaxiang.serve.routes.common import CONSOLE_COOKIE

PREFIX = "/console"
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a console path may be the target after sign-in (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> Response:
    return render(request, "signin.html", principal=None, title=None, next_path=_safe_next(next))


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or [""])[0])
    service = request.app.state.service
    try:
        principal = service.tokens.verify(token)
        landing = first_page(principal)
    except (AuthError, HuaxiangError) as error:
        message = error.message if isinstance(error, HuaxiangError) else str(error)
        return render(
            request, "signin.html", principal=None, status_code=401, next_path=target, problem=message
        )
    response = RedirectResponse(target if target != PREFIX + "/" else landing, status_code=303)
    response.set_cookie(CONSOLE_COOKIE, token, httponly=True, samesite="strict", path="/", max_age=12 * 3600)
    return response


@router.post("/signout")
async def signout() -> Response:
    response = RedirectResponse(PREFIX + "/signin", status_code=303)
    response.delete_cookie(CONSOLE_COOKIE, path="/")
    return response


@router.get("/plotly.min.js")
async def plotly_js() -> Response:
    return FileResponse(
        plotly_js_path(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )


def is_page_request(request: Request) -> bool:
    """A console page (HTML), not the console's static files."""
    path = request.url.path
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(PREFIX + "/static/")


async def _sign_in_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    return RedirectResponse(f"{PREFIX}/signin?next={quote(_safe_next(error.next_path))}", status_code=303)


def error_page(request: Request, error: HuaxiangError) -> Response:
    """A console page's error as a page in the frame (the API answers the same error as JSON)."""
    try:
        principal: Any = viewer(request)
    except HuaxiangError:
        principal = None
    return render(
        request,
        "error.html",
        principal=principal,
        title=None,
        status_code=error.http_status,
        kind=type(error).__name__,
        status=error.http_status,
        message=error.message,
    )


def install(app: FastAPI) -> None:
    """Add the console to the service's app."""
    from huaxiang.console.pages import builder, catalog, experiments, overview, scenes, segments, users

    app.include_router(router)
    for module in (overview, builder, users, catalog, segments, experiments, scenes):
        app.include_router(module.router)
    app.mount(
        f"{PREFIX}/static", StaticFiles(packages=[("huaxiang.console", "static")]), name="console-static"
    )
    app.add_exception_handler(SignInRequired, _sign_in_required)

    @app.get(PREFIX, include_in_schema=False)
    async def console_root() -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)
