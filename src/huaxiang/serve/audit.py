"""The audit log: who looked up, saved or exported what, when, and how many users.

Records are buffered in memory and written to the metadata database
(``service_audit``) by a background thread every ``flush_s`` seconds, and on
:meth:`AuditLog.flush` / :meth:`AuditLog.close`: a lookup costs a list append,
not a database write, so the log keeps up with thousands of lookups a second.
The price: records of the last ``flush_s`` seconds are lost if the process is
killed with ``kill -9`` (a clean shutdown writes them).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from sqlalchemy import DateTime, Integer, String, Text, create_engine, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from huaxiang.serve.auth import Principal, _sqlite_args

ACTIONS = ("lookup", "audience_save", "export", "token_create", "token_revoke")


class _Base(DeclarativeBase):
    pass


class _AuditRow(_Base):
    __tablename__ = "service_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    who: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(Text)
    count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class AuditRecord:
    """One audited call: ``target`` is the user id, audience name or export file; ``count`` how many users."""

    at: dt.datetime
    who: str
    role: str
    action: str
    target: str
    count: int | None = None
    detail: str | None = None


class AuditLog:
    """Buffered writer and reader of ``service_audit``."""

    def __init__(self, url: str, *, flush_s: float = 0.5) -> None:
        self.engine: Engine = create_engine(url, connect_args=_sqlite_args(url))
        _Base.metadata.create_all(self.engine)
        self.flush_s = flush_s
        self._pending: list[tuple[float, str, str, str, str, int | None, str | None]] = []
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background writer (the service does; scripts may call :meth:`flush` instead)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="huaxiang-audit", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def record(
        self,
        principal: Principal,
        action: str,
        target: str,
        count: int | None = None,
        detail: str | None = None,
    ) -> None:
        # A tuple and a clock reading: this runs on every lookup; the record is made at flush time.
        self._pending.append((time.time(), principal.name, principal.role, action, target, count, detail))

    def flush(self) -> int:
        """Write the buffered records; how many were written."""
        with self._write_lock:
            # Swapping the list is one atomic step, so appends need no lock.
            pending, self._pending = self._pending, []
            if pending:
                rows = [
                    {
                        "at": dt.datetime.fromtimestamp(at, dt.UTC).replace(tzinfo=None),
                        "who": who,
                        "role": role,
                        "action": action,
                        "target": target,
                        "count": count,
                        "detail": detail,
                    }
                    for at, who, role, action, target, count, detail in pending
                ]
                with Session(self.engine) as session, session.begin():
                    session.execute(insert(_AuditRow), rows)
            return len(pending)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
        self.engine.dispose()

    def read(
        self,
        *,
        limit: int = 100,
        action: str | None = None,
        who: str | None = None,
        since: dt.datetime | None = None,
    ) -> list[AuditRecord]:
        """The newest ``limit`` records (pending ones included), newest first."""
        self.flush()
        query = select(_AuditRow).order_by(_AuditRow.id.desc()).limit(limit)
        if action is not None:
            query = query.where(_AuditRow.action == action)
        if who is not None:
            query = query.where(_AuditRow.who == who)
        if since is not None:
            query = query.where(_AuditRow.at >= since)
        with Session(self.engine) as session:
            return [
                AuditRecord(r.at, r.who, r.role, r.action, r.target, r.count, r.detail)
                for r in session.scalars(query)
            ]
