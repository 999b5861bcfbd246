"""Saved audiences, their size history and the export log, in the metadata database.

SQLite at ``DIR/.huaxiang/metadata.db`` by default (SQLAlchemy 2), any SQLAlchemy
URL otherwise (``postgresql+psycopg://...``). Tables: ``audiences`` (name,
kind, definition as JSON and text, frozen members of static audiences),
``audience_sizes`` (one row per audience and snapshot date) and
``audience_exports`` (who exported what, when, how many rows, where).

A *static* audience keeps the user ids it had at the snapshot it was saved on
(zlib-compressed, one id a line); on a later snapshot its members are those ids
still present. A *dynamic* audience keeps only its definition and is evaluated
again on each snapshot; :meth:`AudienceStore.record_size` adds its size for the
snapshot date (the build calls :func:`huaxiang.audience.refresh_sizes`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from huaxiang.audience.errors import AudienceError, AudienceNotFoundError
from huaxiang.errors import did_you_mean

Kind = Literal["static", "dynamic"]
NAME = re.compile(r"^[^\W\d][\w\-]{0,63}$")
"""Audience names: a letter (any script) first, then letters, digits, _ or -, at most 64."""

METADATA_FILE = Path(".huaxiang") / "metadata.db"


class _Base(DeclarativeBase):
    pass


class _AudienceRow(_Base):
    __tablename__ = "audiences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    definition: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    frozen_as_of: Mapped[str | None] = mapped_column(String(10), nullable=True)
    members: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class _SizeRow(_Base):
    __tablename__ = "audience_sizes"
    __table_args__ = (UniqueConstraint("audience_id", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id", ondelete="CASCADE"))
    as_of: Mapped[str] = mapped_column(String(10))
    size: Mapped[int] = mapped_column(Integer)
    users: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class _ExportRow(_Base):
    __tablename__ = "audience_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exported_by: Mapped[str] = mapped_column(String(128))
    exported_at: Mapped[dt.datetime] = mapped_column(DateTime)
    audience: Mapped[str] = mapped_column(Text)
    as_of: Mapped[str] = mapped_column(String(10))
    rows: Mapped[int] = mapped_column(Integer)
    file: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(16))
    id_mode: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class SavedAudience:
    """A saved audience as stored (``definition`` in the JSON form)."""

    name: str
    kind: Kind
    definition: dict[str, Any]
    text: str
    description: str | None
    created_by: str
    created_at: dt.datetime
    frozen_as_of: str | None
    sizes: tuple[tuple[str, int], ...]
    """(snapshot date, size), oldest first."""

    @property
    def latest_size(self) -> int | None:
        return self.sizes[-1][1] if self.sizes else None


@dataclass(frozen=True)
class ExportRecord:
    exported_by: str
    exported_at: dt.datetime
    audience: str
    as_of: str
    rows: int
    file: str
    file_format: str
    id_mode: str
    sha256: str


def default_url(workspace_dir: str | Path) -> str:
    """``sqlite:///DIR/.huaxiang/metadata.db``."""
    path = Path(workspace_dir).resolve() / METADATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def utcnow() -> dt.datetime:
    """Now in UTC, naive and to the second: how every metadata table stores times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


class AudienceStore:
    """Saved audiences and the export log in a SQLAlchemy database (tables created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        _Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ audiences

    def names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.scalars(select(_AudienceRow.name).order_by(_AudienceRow.name)))

    def save(
        self,
        name: str,
        *,
        kind: Kind,
        definition: dict[str, Any],
        text: str,
        as_of: str,
        size: int,
        users: int,
        members: Sequence[str] | None = None,
        description: str | None = None,
        created_by: str,
        replace: bool = False,
    ) -> SavedAudience:
        """Save (or with ``replace``, overwrite) an audience and record its size at ``as_of``."""
        if not NAME.match(name):
            raise AudienceError(
                f"audience name {name!r} is not allowed: start with a letter, then letters, digits, _ or -, "
                "at most 64 characters (e.g. dyson_fans or 高潜戴森)."
            )
        if kind not in ("static", "dynamic"):
            raise AudienceError(f"an audience is static or dynamic, not {kind!r}.")
        if kind == "static" and members is None:
            raise AudienceError("a static audience needs its members.")
        with Session(self.engine) as session, session.begin():
            row = session.scalars(select(_AudienceRow).where(_AudienceRow.name == name)).one_or_none()
            if row is not None and not replace:
                raise AudienceError(
                    f"an audience named '{name}' already exists; choose another name or replace it."
                )
            if row is None:
                row = _AudienceRow(name=name)
                session.add(row)
            else:
                for old in session.scalars(select(_SizeRow).where(_SizeRow.audience_id == row.id)):
                    session.delete(old)
            row.kind = kind
            row.definition = json.dumps(definition, ensure_ascii=False, sort_keys=True)
            row.text = text
            row.description = description
            row.created_by = created_by
            row.created_at = utcnow()
            row.frozen_as_of = as_of if kind == "static" else None
            row.members = (
                zlib.compress("\n".join(members).encode("utf-8"))
                if kind == "static" and members
                else (b"" if kind == "static" else None)
            )
            session.flush()
            session.add(
                _SizeRow(audience_id=row.id, as_of=as_of, size=size, users=users, recorded_at=utcnow())
            )
        return self.get(name)

    def _row(self, session: Session, name: str) -> _AudienceRow:
        row = session.scalars(select(_AudienceRow).where(_AudienceRow.name == name)).one_or_none()
        if row is None:
            names = list(session.scalars(select(_AudienceRow.name)))
            raise AudienceNotFoundError(
                f"no saved audience '{name}'.{did_you_mean(name, names)} "
                f"Saved audiences: {', '.join(sorted(names)) or 'none yet'}."
            )
        return row

    def get(self, name: str) -> SavedAudience:
        with Session(self.engine) as session:
            row = self._row(session, name)
            sizes = session.execute(
                select(_SizeRow.as_of, _SizeRow.size)
                .where(_SizeRow.audience_id == row.id)
                .order_by(_SizeRow.as_of)
            ).all()
            return SavedAudience(
                name=row.name,
                kind=row.kind,  # type: ignore[arg-type]
                definition=json.loads(row.definition),
                text=row.text,
                description=row.description,
                created_by=row.created_by,
                created_at=row.created_at,
                frozen_as_of=row.frozen_as_of,
                sizes=tuple((as_of, size) for as_of, size in sizes),
            )

    def all(self) -> list[SavedAudience]:
        return [self.get(name) for name in self.names()]

    def members(self, name: str) -> list[str]:
        """The frozen user ids of a static audience."""
        with Session(self.engine) as session:
            row = self._row(session, name)
            if row.kind != "static":
                raise AudienceError(f"audience '{name}' is dynamic: its members come from its definition.")
            data = zlib.decompress(row.members or zlib.compress(b"")).decode("utf-8")
            return data.split("\n") if data else []

    def delete(self, name: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, name)
            for old in session.scalars(select(_SizeRow).where(_SizeRow.audience_id == row.id)):
                session.delete(old)
            session.delete(row)

    def record_size(self, name: str, as_of: str, size: int, users: int) -> None:
        """Record (or update) the audience's size in the snapshot of ``as_of``."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, name)
            found = session.scalars(
                select(_SizeRow).where(_SizeRow.audience_id == row.id, _SizeRow.as_of == as_of)
            ).one_or_none()
            if found is None:
                session.add(
                    _SizeRow(audience_id=row.id, as_of=as_of, size=size, users=users, recorded_at=utcnow())
                )
            else:
                found.size, found.users, found.recorded_at = size, users, utcnow()

    # ------------------------------------------------------------------ exports

    def log_export(self, record: ExportRecord) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(_ExportRow(**record.__dict__))

    def exports(self) -> list[ExportRecord]:
        with Session(self.engine) as session:
            rows = session.scalars(select(_ExportRow).order_by(_ExportRow.id))
            return [
                ExportRecord(
                    r.exported_by,
                    r.exported_at,
                    r.audience,
                    r.as_of,
                    r.rows,
                    r.file,
                    r.file_format,
                    r.id_mode,
                    r.sha256,
                )
                for r in rows
            ]
