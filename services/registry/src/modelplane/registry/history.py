"""The registry's own tables: the alias audit history and the event log.

MLflow keeps no history of alias moves (mlflow issue 2169), so every change is
written here, whichever way it came in: this service's gRPC API, or MLflow's
REST API through our app plugin (``mlflow_app.py``), which runs inside the
``mlflow server`` workers and writes to the same database. The event log is
what ``WatchModelEvents`` streams and what invalidates the resolve cache.

SQLite by default, PostgreSQL in production (psycopg 3); SQLAlchemy Core so one
code path serves both. In PostgreSQL, writers take a transaction-level
advisory lock so event sequence numbers become visible in commit order and a
reader that has seen sequence N has seen everything before it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event

from modelplane.kit.documents import is_postgres, sqlalchemy_url
from modelplane.registry.model import (
    AliasChange,
    ChangeOrigin,
    EventType,
    ModelEvent,
    ValidationStatus,
    ValidationSummary,
)

log = logging.getLogger("modelplane.registry.history")

metadata = sa.MetaData()

alias_changes = sa.Table(
    "modelplane_alias_changes", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("change_time_ms", sa.BigInteger, nullable=False),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("alias", sa.String(256), nullable=False),
    sa.Column("from_version", sa.BigInteger, nullable=False),
    sa.Column("to_version", sa.BigInteger, nullable=False),
    sa.Column("principal", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("override", sa.Boolean, nullable=False, default=False),
    sa.Column("validation", sa.Text, nullable=True),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Index("ix_modelplane_alias_changes_model", "model_name", "alias", "id"),
)

events = sa.Table(
    "modelplane_registry_events", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("event_time_ms", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(256), nullable=False, default=""),
    sa.Column("version", sa.BigInteger, nullable=False, default=0),
    sa.Column("alias", sa.String(256), nullable=False, default=""),
    sa.Column("principal", sa.String(256), nullable=False, default=""),
    sa.Column("origin", sa.String(16), nullable=False, default=""),
    sa.Column("alias_change_id", sa.BigInteger, nullable=True),
    sa.Column("validation", sa.Text, nullable=True),
)

_ADVISORY_LOCK_KEY = 7102_0001


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def validation_to_json(v: ValidationSummary | None) -> str | None:
    if v is None:
        return None
    return json.dumps({
        "report_id": v.report_id, "status": v.status.value, "report_uri": v.report_uri,
        "summary": v.summary, "attached_by": v.attached_by,
        "attach_time_ms": int(v.attach_time.timestamp() * 1000) if v.attach_time else None,
    })


def validation_from_json(text: str | None) -> ValidationSummary | None:
    if not text:
        return None
    d = json.loads(text)
    ms = d.get("attach_time_ms")
    return ValidationSummary(report_id=d["report_id"], status=ValidationStatus(d["status"]),
                             report_uri=d.get("report_uri", ""), summary=d.get("summary", ""),
                             attached_by=d.get("attached_by", ""),
                             attach_time=_from_ms(ms) if ms else None)


@dataclass(frozen=True)
class PendingEvent:
    """An event to append (sequence and time are assigned on write)."""

    type: EventType
    model_name: str = ""
    version: int = 0
    alias: str = ""
    principal: str = ""
    origin: ChangeOrigin = ChangeOrigin.GRPC
    validation: ValidationSummary | None = None


class RegistryHistory:
    """Append and read alias changes and events (thread-safe; one per process)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.postgres = is_postgres(database_url)
        kwargs: dict[str, Any] = {"future": True}
        if not self.postgres:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_size=5, max_overflow=5, pool_pre_ping=True)
        self.engine = sa.create_engine(sqlalchemy_url(database_url), **kwargs)
        if not self.postgres:
            @sa_event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

    def create_tables(self) -> None:
        with self.engine.begin() as conn:
            if self.postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                             {"k": _ADVISORY_LOCK_KEY})
            metadata.create_all(conn, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    # writes -----------------------------------------------------------------------
    def _lock(self, conn: sa.Connection) -> None:
        if self.postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})

    def _insert_event(self, conn: sa.Connection, ev: PendingEvent, now: int,
                      alias_change_id: int | None = None) -> int:
        result = conn.execute(events.insert().values(
            event_time_ms=now, type=ev.type.value, model_name=ev.model_name,
            version=ev.version, alias=ev.alias, principal=ev.principal,
            origin=ev.origin.value, alias_change_id=alias_change_id,
            validation=validation_to_json(ev.validation)))
        return _inserted_id(result)

    def record_alias_change(self, change: AliasChange) -> AliasChange:
        """Append the change and its ALIAS_SET / ALIAS_DELETED event in one transaction."""
        now = _now_ms()
        with self.engine.begin() as conn:
            self._lock(conn)
            result = conn.execute(alias_changes.insert().values(
                change_time_ms=now, model_name=change.model_name, alias=change.alias,
                from_version=change.from_version, to_version=change.to_version,
                principal=change.principal, reason=change.reason, override=change.override,
                validation=validation_to_json(change.validation), origin=change.origin.value))
            change_id = _inserted_id(result)
            kind = EventType.ALIAS_DELETED if change.to_version == 0 else EventType.ALIAS_SET
            self._insert_event(conn, PendingEvent(
                kind, change.model_name, change.to_version or change.from_version, change.alias,
                change.principal, change.origin, change.validation), now, change_id)
        return replace(change, id=change_id, change_time=_from_ms(now))

    def record_events(self, pending: Iterable[PendingEvent]) -> list[int]:
        items = list(pending)
        if not items:
            return []
        now = _now_ms()
        with self.engine.begin() as conn:
            self._lock(conn)
            return [self._insert_event(conn, ev, now) for ev in items]

    # reads ------------------------------------------------------------------------
    @staticmethod
    def _change(row: Any) -> AliasChange:
        return AliasChange(
            id=row.id, model_name=row.model_name, alias=row.alias,
            from_version=row.from_version, to_version=row.to_version, principal=row.principal,
            reason=row.reason or "", override=bool(row.override),
            validation=validation_from_json(row.validation), origin=ChangeOrigin(row.origin),
            change_time=_from_ms(row.change_time_ms))

    def list_alias_changes(self, model_name: str | None, alias: str | None, limit: int,
                           before_id: int | None = None) -> list[AliasChange]:
        """Newest first; ``before_id`` continues a previous page."""
        q = sa.select(alias_changes).order_by(alias_changes.c.id.desc()).limit(limit)
        if model_name:
            q = q.where(alias_changes.c.model_name == model_name)
        if alias:
            q = q.where(alias_changes.c.alias == alias)
        if before_id is not None:
            q = q.where(alias_changes.c.id < before_id)
        with self.engine.connect() as conn:
            return [self._change(r) for r in conn.execute(q)]

    def latest_alias_changes(self, model_name: str) -> dict[str, AliasChange]:
        """The most recent change of each alias of a model."""
        latest = (sa.select(alias_changes.c.alias, sa.func.max(alias_changes.c.id).label("id"))
                  .where(alias_changes.c.model_name == model_name)
                  .group_by(alias_changes.c.alias).subquery())
        q = sa.select(alias_changes).join(latest, alias_changes.c.id == latest.c.id)
        with self.engine.connect() as conn:
            return {r.alias: self._change(r) for r in conn.execute(q)}

    def alias_changes_by_id(self, ids: Sequence[int]) -> dict[int, AliasChange]:
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(alias_changes).where(alias_changes.c.id.in_(ids)))
            return {r.id: self._change(r) for r in rows}

    def latest_sequence(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0)))
                       .scalar_one())

    def events_after(self, after: int, limit: int = 1000,
                     up_to: int | None = None) -> list[ModelEvent]:
        q = sa.select(events).where(events.c.seq > after).order_by(events.c.seq).limit(limit)
        if up_to is not None:
            q = q.where(events.c.seq <= up_to)
        with self.engine.connect() as conn:
            rows = list(conn.execute(q))
        changes = self.alias_changes_by_id([r.alias_change_id for r in rows
                                            if r.alias_change_id is not None])
        return [ModelEvent(
            sequence=r.seq, type=EventType(r.type), model_name=r.model_name, version=r.version,
            alias=r.alias, principal=r.principal,
            origin=ChangeOrigin(r.origin) if r.origin else None,
            event_time=_from_ms(r.event_time_ms),
            alias_change=changes.get(r.alias_change_id) if r.alias_change_id else None,
            validation=validation_from_json(r.validation)) for r in rows]
