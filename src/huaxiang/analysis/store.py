"""Saved experiments and their results, in the workspace's metadata database.

The same database as saved audiences (``DIR/.huaxiang/metadata.db`` by default, any
SQLAlchemy URL otherwise), with tables of its own: ``experiments`` (name, definition as
JSON, who created it and when, the snapshot it was assigned on and the group sizes) and
``experiment_results`` (every computed result, as JSON, newest last). The assignment
itself (one row per user) is a Parquet file beside the data
(``DIR/experiments/NAME/assignment.parquet``) so that results join it in the engine.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from huaxiang.audience.store import utcnow
from huaxiang.errors import NotFoundError, RequestError, did_you_mean


class _Base(DeclarativeBase):
    pass


class _ExperimentRow(_Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    definition: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    assigned_as_of: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sizes: Mapped[str | None] = mapped_column(Text, nullable=True)


class _ResultRow(_Base):
    __tablename__ = "experiment_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    payload: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class SavedExperiment:
    """An experiment as stored: its definition (plain data) and, once assigned, its group sizes."""

    name: str
    definition: dict[str, Any]
    created_by: str
    created_at: dt.datetime
    assigned_as_of: str | None
    sizes: dict[str, int] | None


class ExperimentStore:
    """Experiments and their results in a SQLAlchemy database (tables created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        _Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.scalars(select(_ExperimentRow.name).order_by(_ExperimentRow.name)))

    def _row(self, session: Session, name: str) -> _ExperimentRow:
        row = session.scalars(select(_ExperimentRow).where(_ExperimentRow.name == name)).one_or_none()
        if row is None:
            names = list(session.scalars(select(_ExperimentRow.name)))
            raise NotFoundError(
                f"no experiment '{name}'.{did_you_mean(name, names)} "
                f"Experiments: {', '.join(sorted(names)) or 'none yet'} "
                "(create one with 'huaxiang experiment create')."
            )
        return row

    def create(
        self, name: str, definition: dict[str, Any], created_by: str, *, replace: bool = False
    ) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.scalars(select(_ExperimentRow).where(_ExperimentRow.name == name)).one_or_none()
            if row is not None and not replace:
                raise RequestError(
                    f"an experiment named '{name}' already exists; choose another name or replace it."
                )
            if row is None:
                row = _ExperimentRow(name=name)
                session.add(row)
            else:
                for old in session.scalars(select(_ResultRow).where(_ResultRow.experiment_id == row.id)):
                    session.delete(old)
            row.definition = json.dumps(definition, ensure_ascii=False, sort_keys=True, default=str)
            row.created_by = created_by
            row.created_at = utcnow()
            row.assigned_as_of = None
            row.sizes = None

    def record_assignment(self, name: str, as_of: str, sizes: dict[str, int]) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, name)
            row.assigned_as_of = as_of
            row.sizes = json.dumps(sizes, ensure_ascii=False)

    def get(self, name: str) -> SavedExperiment:
        with Session(self.engine) as session:
            row = self._row(session, name)
            return SavedExperiment(
                name=row.name,
                definition=json.loads(row.definition),
                created_by=row.created_by,
                created_at=row.created_at,
                assigned_as_of=row.assigned_as_of,
                sizes=json.loads(row.sizes) if row.sizes else None,
            )

    def all(self) -> list[SavedExperiment]:
        return [self.get(name) for name in self.names()]

    def save_result(self, name: str, payload: dict[str, Any]) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, name)
            session.add(
                _ResultRow(
                    experiment_id=row.id,
                    computed_at=utcnow(),
                    payload=json.dumps(payload, ensure_ascii=False, default=str),
                )
            )

    def latest_result(self, name: str) -> dict[str, Any] | None:
        with Session(self.engine) as session:
            row = self._row(session, name)
            found = session.scalars(
                select(_ResultRow).where(_ResultRow.experiment_id == row.id).order_by(_ResultRow.id.desc())
            ).first()
            return json.loads(found.payload) if found is not None else None
