"""``huaxiang serve``, ``huaxiang token create|list|revoke``, ``huaxiang audit``, ``huaxiang events fold``.

Thin: each command parses options and calls :mod:`huaxiang.serve` (FastAPI and uvicorn are
imported only by ``serve``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from huaxiang.audience.store import default_url
from huaxiang.cli_common import WorkspaceOption, out, print_error
from huaxiang.errors import HuaxiangError
from huaxiang.serve.audit import AuditLog
from huaxiang.serve.auth import ROLES, TokenStore

WORKER_HEALTHCHECK_S = 600
token_app = typer.Typer(help="API tokens of the tag service: create, list, revoke.", no_args_is_help=True)
events_app = typer.Typer(
    help="The real-time event log: fold it into the canonical events.", no_args_is_help=True
)


def _tokens(workspace: Path) -> TokenStore:
    if not workspace.is_dir():
        raise typer.BadParameter(f"{workspace} is not a folder; give the workspace with -w DIR.")
    return TokenStore(default_url(workspace))


def first_admin(workspace: Path) -> str | None:
    """Create the ``admin`` token when the workspace has no admin yet; the new token (or ``None``)."""
    tokens = _tokens(workspace)
    try:
        if tokens.has_admin():
            return None
        name = "admin"
        taken = {p.name for p in tokens.list()}
        suffix = 2
        while name in taken:
            name, suffix = f"admin-{suffix}", suffix + 1
        return tokens.create(name, "admin").token
    finally:
        tokens.close()


def serve(
    workspace: WorkspaceOption = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on (localhost by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the snapshot).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Start the tag service (API, OpenAPI at /docs) on localhost; prints an admin token on first start."""
    import uvicorn

    from huaxiang.serve.app import create_app
    from huaxiang.serve.settings import SETTINGS_ENV, Settings

    try:
        settings = Settings(workspace=workspace.resolve())
        token = first_admin(workspace)
        app = create_app(settings) if workers == 1 else None
    except HuaxiangError as error:
        print_error(error, "错误 error:")
        raise typer.Exit(2) from None
    url = f"http://{host}:{port}"
    out.print(f"huaxiang tag service: {url}  (API docs: {url}/docs)", highlight=False, soft_wrap=True)
    if token is not None:
        out.print(f"admin token (shown once, keep it): {token}", highlight=False, soft_wrap=True)
    if app is not None:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    else:
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run(
            "huaxiang.serve.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
            # A worker loads the snapshot before it answers (about 10 s at a million users), and
            # again when a new one lands: uvicorn's default 5 s health check would kill it meanwhile.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        )


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    workspace: WorkspaceOption = Path("."),
    name: Annotated[str | None, typer.Option(help="A name for the token (default: role-N).")] = None,
    tag_categories: Annotated[
        str | None, typer.Option(help="Merchants: the tag categories they may use, e.g. basic,scene.")
    ] = None,
    min_audience: Annotated[int, typer.Option(help="Merchants: sizes below this are withheld.")] = 0,
    rate_limit: Annotated[int | None, typer.Option(help="Requests per second (default by role).")] = None,
) -> None:
    """Create an API token; it is printed once, only its hash is stored."""
    tokens = _tokens(workspace)
    try:
        if name is None:
            taken = {p.name for p in tokens.list()}
            number = 1
            while f"{role}-{number}" in taken:
                number += 1
            name = f"{role}-{number}"
        created = tokens.create(
            name, role, tag_categories=tag_categories, min_audience=min_audience, rate_per_s=rate_limit
        )
    except HuaxiangError as error:
        print_error(error, "错误 error:")
        raise typer.Exit(2) from None
    finally:
        tokens.close()
    p = created.principal
    out.print(f"token '{p.name}' ({p.role}, {p.rate_per_s:g} requests/s):", highlight=False)
    out.print(created.token, highlight=False, soft_wrap=True)
    if p.is_merchant:
        categories = ", ".join(sorted(p.tag_categories or ()))
        out.print(f"categories: {categories}; minimum audience: {p.min_audience:,}", highlight=False)
        out.print(
            f"export salt (ids are exported as SHA-256 of salt + id): {p.export_salt}",
            highlight=False,
            soft_wrap=True,
        )


@token_app.command("list")
def token_list(
    workspace: WorkspaceOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The tokens (names, roles, limits; never the secrets)."""
    tokens = _tokens(workspace)
    try:
        found = tokens.list()
    finally:
        tokens.close()
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "role": p.role,
            "tag_categories": sorted(p.tag_categories) if p.tag_categories is not None else None,
            "min_audience": p.min_audience,
            "rate_per_s": p.rate_per_s,
            "created_at": p.created_at.isoformat(),
            "revoked_at": p.revoked_at.isoformat() if p.revoked_at else None,
        }
        for p in found
    ]
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("name", "role", "categories", "min audience", "rate/s", "created", "revoked")
    for row in rows:
        categories = ",".join(row["tag_categories"]) if row["tag_categories"] is not None else "all"
        table.add_row(
            str(row["name"]),
            str(row["role"]),
            categories,
            f"{row['min_audience']:,}",
            f"{row['rate_per_s']:g}",
            str(row["created_at"]),
            str(row["revoked_at"] or ""),
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], workspace: WorkspaceOption = Path(".")
) -> None:
    """Revoke a token (the service refuses it within its token cache time, 5 s by default)."""
    tokens = _tokens(workspace)
    try:
        revoked = tokens.revoke(name)
    except HuaxiangError as error:
        print_error(error, "错误 error:")
        raise typer.Exit(2) from None
    finally:
        tokens.close()
    out.print(f"revoked '{revoked.name}' ({revoked.role})", highlight=False)


def audit(
    workspace: WorkspaceOption = Path("."),
    limit: Annotated[int, typer.Option(help="How many records, newest first.")] = 50,
    action: Annotated[str | None, typer.Option(help="lookup, audience_save or export.")] = None,
    who: Annotated[str | None, typer.Option(help="A token name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The audit trail of the tag service: who looked up, saved or exported what, when, how many."""
    log = AuditLog(default_url(workspace))
    try:
        records = log.read(limit=limit, action=action, who=who)
    finally:
        log.close()
    if as_json:
        data = [{**r.__dict__, "at": r.at.isoformat()} for r in records]
        out.print_json(json.dumps(data, ensure_ascii=False))
        return
    table = Table("at (UTC)", "who", "role", "action", "target", "count", "detail")
    for r in records:
        table.add_row(
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            r.who,
            r.role,
            r.action,
            r.target,
            "" if r.count is None else f"{r.count:,}",
            r.detail or "",
        )
    out.print(table)


@events_app.command("fold")
def events_fold(
    workspace: WorkspaceOption = Path("."),
    retention_days: Annotated[int, typer.Option(help="Keep folded log segments this many days.")] = 7,
) -> None:
    """Append the logged real-time events to the canonical events (run between ingest and build)."""
    from huaxiang.serve.events import fold

    try:
        result = fold(workspace, retention_days=retention_days)
    except HuaxiangError as error:
        print_error(error, "错误 error:")
        raise typer.Exit(2) from None
    out.print(
        f"folded {result.folded:,} events; data/events.parquet now holds {result.events_total:,}"
        + (f"; deleted {', '.join(result.deleted_segments)}" if result.deleted_segments else ""),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the service's commands to the main ``huaxiang`` app."""
    app.command("serve")(serve)
    app.command("audit")(audit)
    app.add_typer(token_app, name="token")
    app.add_typer(events_app, name="events")
