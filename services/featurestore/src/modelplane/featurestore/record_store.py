"""The featurestore's own records (datasets, data quality reports) in SQLite or PostgreSQL.

Feast keeps the definitions; this keeps what the service makes. Each record
is a JSON document plus the columns it is looked up and listed by.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelplane.kit.errors import AlreadyExists
from modelplane.kit.pgschema import lock_schema

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS fs_datasets (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL,
        create_time TEXT NOT NULL, payload TEXT NOT NULL, UNIQUE (name, version))""",
    """CREATE TABLE IF NOT EXISTS fs_quality_reports (
        id TEXT PRIMARY KEY, dataset TEXT NOT NULL, feature_view TEXT NOT NULL,
        create_time TEXT NOT NULL, payload TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS fs_quality_reports_dataset ON fs_quality_reports (dataset)",
    "CREATE INDEX IF NOT EXISTS fs_quality_reports_view ON fs_quality_reports (feature_view)",
]

class RecordStore:
    def __init__(self, url: str) -> None:
        """``url``: ``sqlite:///path`` or ``postgresql://...``."""
        self.url = url
        self._postgres = url.startswith(("postgresql://", "postgres://"))
        self._lock = threading.Lock()
        self._pool: Any = None
        if self._postgres:
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(url, min_size=1, max_size=4, open=True)
        else:
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sqlite = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._sqlite.execute("PRAGMA journal_mode=WAL")
        with self._tx() as cur:
            if self._postgres:
                lock_schema(cur, "featurestore")
            for stmt in _SCHEMA:
                cur.execute(stmt)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        else:
            self._sqlite.close()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        if self._postgres:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield _PgCursor(cur)
        else:
            with self._lock:
                cur = self._sqlite.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise

    # ------------------------------------------------------------ datasets

    def add_dataset(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert ``record`` as the next version of its name; sets ``version``."""
        for _ in range(5):
            try:
                with self._tx() as cur:
                    cur.execute("SELECT COALESCE(MAX(version), 0) FROM fs_datasets WHERE name = ?",
                                (record["name"],))
                    record["version"] = int(cur.fetchone()[0]) + 1
                    cur.execute("INSERT INTO fs_datasets (id, name, version, create_time, payload) "
                                "VALUES (?, ?, ?, ?, ?)",
                                (record["id"], record["name"], record["version"],
                                 record["create_time"], json.dumps(record)))
                return record
            except Exception as exc:  # a concurrent writer took the version: try the next
                if "unique" not in str(exc).lower() and "UniqueViolation" not in type(exc).__name__:
                    raise
        raise AlreadyExists(f"could not assign a version to dataset {record['name']!r}",
                            reason="DATASET_VERSION_CONFLICT", metadata={"dataset": record["name"]})

    def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute("SELECT payload FROM fs_datasets WHERE id = ?", (dataset_id,))
            row = cur.fetchone()
        return json.loads(row[0]) if row else None

    def list_datasets(self, name: str, limit: int,
                      offset: int) -> tuple[list[dict[str, Any]], bool]:
        where, params = ("WHERE name = ?", [name]) if name else ("", [])
        with self._tx() as cur:
            cur.execute(f"SELECT payload FROM fs_datasets {where} "
                        "ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
                        (*params, limit + 1, offset))
            rows = cur.fetchall()
        return [json.loads(r[0]) for r in rows[:limit]], len(rows) > limit

    def delete_dataset(self, dataset_id: str) -> bool:
        with self._tx() as cur:
            cur.execute("DELETE FROM fs_datasets WHERE id = ?", (dataset_id,))
            return bool(cur.rowcount)

    # ------------------------------------------------------------ reports

    def add_report(self, record: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO fs_quality_reports "
                        "(id, dataset, feature_view, create_time, payload) VALUES (?, ?, ?, ?, ?)",
                        (record["id"], record.get("dataset", ""), record.get("feature_view", ""),
                         record["create_time"], json.dumps(record)))

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute("SELECT payload FROM fs_quality_reports WHERE id = ?", (report_id,))
            row = cur.fetchone()
        return json.loads(row[0]) if row else None

    def list_reports(self, dataset: str, feature_view: str, limit: int,
                     offset: int) -> tuple[list[dict[str, Any]], bool]:
        clauses, params = [], []
        if dataset:
            clauses.append("dataset = ?")
            params.append(dataset)
        if feature_view:
            clauses.append("feature_view = ?")
            params.append(feature_view)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._tx() as cur:
            cur.execute(f"SELECT payload FROM fs_quality_reports {where} "
                        "ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
                        (*params, limit + 1, offset))
            rows = cur.fetchall()
        return [json.loads(r[0]) for r in rows[:limit]], len(rows) > limit


class _PgCursor:
    """psycopg cursor taking sqlite's ``?`` placeholders."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, query: str, params: Any = ()) -> None:
        self._cur.execute(query.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> Any:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)
