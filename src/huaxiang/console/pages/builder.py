"""Audience builder 人群圈选: conditions under AND / OR / NOT, size, Venn, top N, split, save, export.

The page is drawn by ``static/builder.js``, which reads the caller's catalog (``GET /catalog``)
and calls the audience API (``/audiences/...``) as the signed-in token: the API checks the
role, a merchant's categories and minimum size, and its hashed exports, exactly as for any
other caller. This module renders the frame and lets a token download the exports it made.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from huaxiang.audience.engine import EXPORTS_DIR
from huaxiang.catalog import CATEGORY_LABELS_ZH, Category
from huaxiang.console.access import require_page, viewer
from huaxiang.console.i18n import MESSAGES, message, pick, request_lang
from huaxiang.console.render import render
from huaxiang.errors import NotFoundError
from huaxiang.serve.auth import Principal

router = APIRouter(prefix="/console", include_in_schema=False)
#: Message keys the page's script needs (sent to it as JSON, in the page's language).
SCRIPT_PREFIXES = ("builder.", "role.")


@router.get("/audiences")
async def builder(request: Request) -> Response:
    principal = viewer(request)
    require_page(principal, "builder")
    lang = request_lang(request)
    generation = request.app.state.service.store.current
    categories = {c.value: pick(CATEGORY_LABELS_ZH[c], c.value, lang) for c in Category}
    texts = {key: message(key, lang) for key in MESSAGES if key.startswith(SCRIPT_PREFIXES)}
    return render(
        request,
        "builder.html",
        principal=principal,
        page="builder",
        charts=True,
        as_of=generation.as_of.isoformat(),
        users=generation.tags.users,
        can_list_ids=principal.role in ("admin", "analyst"),
        config={
            "lang": lang,
            "as_of": generation.as_of.isoformat(),
            "merchant": principal.is_merchant,
            "min_audience": principal.min_audience,
            "can_list_ids": principal.role in ("admin", "analyst"),
            "categories": categories,
            "texts": texts,
        },
    )


def exported_file(
    workspace: Path, records: list[tuple[str, str]], file_name: str, principal: Principal
) -> Path:
    """The export ``file_name`` if ``principal`` made it (``records``: the export log's
    ``(file path, exported_by)``); a 404 otherwise, so nobody downloads another token's file."""
    folder = (workspace / EXPORTS_DIR).resolve()
    target = (folder / file_name).resolve()
    mine = {Path(path).resolve() for path, by in records if by == principal.name}
    if target.parent != folder or target not in mine or not target.is_file():
        raise NotFoundError(
            f"no export '{file_name}' made by token '{principal.name}' in {EXPORTS_DIR}/; "
            "export the audience first (the builder's 导出 export)."
        )
    return target


@router.get("/audiences/exports/{file_name}")
def download_export(request: Request, file_name: str) -> Response:
    """Download an export this token made (merchants' exports hold salted hashes only)."""
    principal = viewer(request)
    require_page(principal, "builder")
    generation = request.app.state.service.store.current
    with generation.audience_lock:
        log = generation.audiences().store.exports()
    records = [(record.file, record.exported_by) for record in log]
    workspace = Path(request.app.state.service.settings.workspace)
    path = exported_file(workspace, records, file_name, principal)
    return FileResponse(path, filename=path.name)
