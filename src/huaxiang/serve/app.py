"""The tag service's FastAPI application: ``create_app(settings)``.

Every error, whatever raised it (huaxiang's own errors carry their HTTP status,
FastAPI's validation, Starlette's routing, an unexpected bug), is answered in one
JSON shape::

    {"error": {"type": "NotFoundError", "message": "no user 'U1' ...", "status": 404, "details": {}}}

``tests/unit/test_serve_errors.py`` enforces it. OpenAPI is at ``/openapi.json``
and its pages at ``/docs``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from huaxiang import __version__
from huaxiang.audience.errors import DefinitionError
from huaxiang.audience.store import default_url
from huaxiang.config import load_config
from huaxiang.errors import HuaxiangError
from huaxiang.serve.audit import AuditLog
from huaxiang.serve.auth import AuthError, RateLimiter, RateLimitError, TokenStore
from huaxiang.serve.events import EventFeed, scene_config
from huaxiang.serve.settings import Settings
from huaxiang.serve.store import Generation, OnlineStore

log = logging.getLogger(__name__)


class Service:
    """Everything the routes share: the online store, event feed, tokens, audit log and rate limiter."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        workspace = settings.workspace
        self.database_url = settings.database_url or default_url(workspace)
        self.zone = ZoneInfo(load_config(workspace).timezone)
        self.tokens = TokenStore(self.database_url, cache_s=settings.token_cache_s)
        self.audit = AuditLog(self.database_url, flush_s=settings.audit_flush_s)
        self.limiter = RateLimiter()
        self.store = OnlineStore(
            workspace, database_url=self.database_url, watch_interval_s=settings.watch_interval_s
        )
        weights, scenes_of = scene_config(workspace)
        self.events = EventFeed(settings, self.zone, scene_weights=weights, scenes_of=scenes_of)
        self.store.listeners.append(self._on_swap)

    def _on_swap(self, generation: Generation) -> None:
        start = dt.datetime.combine(generation.as_of, dt.time(), self.zone).timestamp()
        self.events.set_snapshot_start(start)

    def start(self) -> None:
        self.store.start()
        self.events.start()
        self.audit.start()

    def close(self) -> None:
        self.events.close()
        self.store.close()
        self.audit.close()
        self.tokens.close()


def error_body(kind: str, message: str, status: int, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape."""
    return {"error": {"type": kind, "message": message, "status": status, "details": details or {}}}


def _error_response(
    kind: str,
    message: str,
    status: int,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(kind, message, status, details), status_code=status, headers=headers)


async def _huaxiang_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HuaxiangError)
    from huaxiang.console.app import error_page, is_page_request

    if is_page_request(request):
        return error_page(request, error)
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(error, DefinitionError):
        details = {
            k: v for k, v in (("path", error.path), ("line", error.line), ("column", error.column)) if v
        }
    if isinstance(error, RateLimitError):
        details["retry_after_s"] = round(error.retry_after, 3)
        headers["Retry-After"] = str(max(1, round(error.retry_after + 0.5)))
    if isinstance(error, AuthError):
        headers["WWW-Authenticate"] = "Bearer"
    return _error_response(type(error).__name__, error.message, error.http_status, details, headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in error.errors()
    ]
    malformed = any(item["type"] == "json_invalid" for item in problems)
    first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"])
    if malformed:
        message = f"the request body is not valid JSON ({first['msg']}); send a JSON object."
    else:
        message = f"{where}: {first['msg']}" + (
            f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        )
    status = 400 if malformed else 422
    return _error_response(
        "ValidationError" if not malformed else "MalformedJSON", message, status, {"errors": problems}
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    message = str(error.detail)
    if isinstance(error, _TooLarge):
        return _error_response("PayloadTooLarge", message, 413)
    if error.status_code == 404:
        message = f"no endpoint {request.url.path}; see /docs for the endpoints."
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /docs."
    return _error_response("HTTPError", message, error.status_code, headers=dict(error.headers or {}))


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error_response("InternalError", "the service failed unexpectedly; the error is in its log.", 500)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 (by Content-Length or as it streams)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than {self.limit:,} bytes; send smaller batches."
        response = _error_response("PayloadTooLarge", message, 413)
        await response({"type": "http"}, _no_body, send)


class _TooLarge(StarletteHTTPException):
    """A streamed body passed the limit (an HTTP error, so FastAPI's body parsing lets it through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes; send smaller batches.")


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def create_app(settings: Settings) -> FastAPI:
    """The tag service over ``settings.workspace`` (loads the latest snapshot and starts watching)."""
    from huaxiang import console
    from huaxiang.serve.routes import admin, analysis, audiences, catalog, events, meta, recs, scenes, users

    service = Service(settings)
    service.start()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="huaxiang tag service",
        version=__version__,
        description="User tags, audiences and real-time events of a huaxiang workspace (docs/service.md).",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_exception_handler(HuaxiangError, _huaxiang_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    # The lookup first: matched first.
    for module in (users, meta, catalog, audiences, events, admin, analysis, scenes, recs):
        app.include_router(module.router)
    scenes.attach(service)  # scene models made ahead for new snapshots (huaxiang.scenes.online)
    console.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn's worker processes call (settings from ``HUAXIANG_SERVE_SETTINGS``)."""
    return create_app(Settings.from_env())
