"""Where runs and reports are kept: SQLite by default, PostgreSQL in production.

Each row keeps the filterable fields as columns and the whole object as JSON.
Lists are newest first with keyset page tokens over (create_time, id).
Blocking: call from a worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelplane.kit import paging
from modelplane.kit.errors import NotFound
from modelplane.kit.pgschema import lock_schema
from modelplane.validator.codec import report_from_json, report_to_json, run_from_json, run_to_json
from modelplane.validator.report import CheckStatus, ValidationReport
from modelplane.validator.run import RunState, ValidationRun

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS validation_runs (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,
        create_time TEXT NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS validation_runs_order ON validation_runs (create_time, id)",
    """CREATE TABLE IF NOT EXISTS validation_reports (
        id TEXT PRIMARY KEY, run_id TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
        status TEXT NOT NULL, create_time TEXT NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS validation_reports_order ON validation_reports (create_time, id)",
)


def _keyset(position: object) -> tuple[str, str]:
    """The position in a page token: (create_time, id) of the last row returned."""
    if not isinstance(position, list) or len(position) != 2:
        raise TypeError(position)
    return str(position[0]), str(position[1])


class RunStore:
    """SQL storage of runs and reports over sqlite3 or psycopg 3."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._postgres = url.startswith(("postgresql://", "postgres://"))
        self._lock = threading.Lock()
        if self._postgres:
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(url, min_size=1, max_size=4, open=True)
        else:
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:") else url
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._sqlite = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._sqlite.execute("PRAGMA journal_mode=WAL")
        with self._cursor() as cur:
            if self._postgres:
                lock_schema(cur, "validator")
            for statement in _SCHEMA:
                cur.execute(statement)

    @classmethod
    def sqlite_in(cls, directory: Path) -> RunStore:
        return cls(f"sqlite:///{directory / 'validator.db'}")

    def close(self) -> None:
        if self._postgres:
            self._pool.close()
        else:
            self._sqlite.close()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self._postgres:
            with self._pool.connection() as conn, conn.cursor() as pg_cur:
                yield pg_cur
        else:
            with self._lock:
                cur = self._sqlite.cursor()
                try:
                    cur.execute("BEGIN")
                    yield cur
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                finally:
                    cur.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    # runs ------------------------------------------------------------------------------------

    def save_run(self, run: ValidationRun) -> None:
        assert run.create_time is not None
        with self._cursor() as cur:
            cur.execute(self._sql(
                "INSERT INTO validation_runs (id, model, version, state, create_time, body) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
                "body = excluded.body"),
                (run.id, run.model, run.version, run.state.value, run.create_time.isoformat(),
                 run_to_json(run)))

    def get_run(self, run_id: str) -> ValidationRun:
        with self._cursor() as cur:
            cur.execute(self._sql("SELECT body FROM validation_runs WHERE id = ?"), (run_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"validation run {run_id!r} not found", reason="RUN_NOT_FOUND",
                           metadata={"validation_run": run_id})
        return run_from_json(row[0])

    def list_runs(self, *, model: str = "", version: str = "", state: RunState | None = None,
                  size: int = 0, token: str = "") -> tuple[list[ValidationRun], str]:
        filters = [("model", model), ("version", version), ("state", state.value if state else "")]
        rows, next_token = self._page("validation_runs", filters, size, token)
        return [run_from_json(r) for r in rows], next_token

    def unfinished_runs(self) -> list[ValidationRun]:
        with self._cursor() as cur:
            cur.execute(self._sql("SELECT body FROM validation_runs WHERE state IN (?, ?)"),
                        (RunState.PENDING.value, RunState.RUNNING.value))
            return [run_from_json(r[0]) for r in cur.fetchall()]

    # reports ---------------------------------------------------------------------------------

    def save_report(self, report: ValidationReport) -> None:
        assert report.create_time is not None
        with self._cursor() as cur:
            cur.execute(self._sql(
                "INSERT INTO validation_reports "
                "(id, run_id, model, version, status, create_time, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body"),
                (report.id, report.run_id, report.model, report.version, report.status.name,
                 report.create_time.isoformat(), report_to_json(report)))

    def get_report(self, report_id: str) -> ValidationReport:
        with self._cursor() as cur:
            cur.execute(self._sql("SELECT body FROM validation_reports WHERE id = ?"), (report_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"validation report {report_id!r} not found", reason="REPORT_NOT_FOUND",
                           metadata={"validation_report": report_id})
        return report_from_json(row[0])

    def list_reports(self, *, model: str = "", version: str = "", status: CheckStatus | None = None,
                     size: int = 0, token: str = "") -> tuple[list[ValidationReport], str]:
        filters = [("model", model), ("version", version),
                   ("status", status.name if status else "")]
        rows, next_token = self._page("validation_reports", filters, size, token)
        return [report_from_json(r) for r in rows], next_token

    # paging ----------------------------------------------------------------------------------

    def _page(self, table: str, filters: Sequence[tuple[str, str]], size: int,
              token: str) -> tuple[list[str], str]:
        limit = paging.page_size(size)
        query = {"kind": table, **dict(filters)}
        where, args = [], []
        for column, value in filters:  # column names are ours, values are bound parameters
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        position = paging.decode_page_token(token, query, shape=_keyset)
        if position is not None:
            t, i = position
            where.append("(create_time < ? OR (create_time = ? AND id < ?))")
            args += [t, t, i]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._cursor() as cur:
            cur.execute(self._sql(f"SELECT body, create_time, id FROM {table} {clause} "
                                  "ORDER BY create_time DESC, id DESC LIMIT ?"), (*args, limit + 1))
            rows = cur.fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_token = paging.encode_page_token([rows[-1][1], rows[-1][2]] if more else None, query)
        return [r[0] for r in rows], next_token
