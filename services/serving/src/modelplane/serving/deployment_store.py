"""Where deployments and batch jobs persist: SQLite (embedded default) or PostgreSQL.

Both keep each record as JSON next to the columns it is looked up by, so a
runtime change (traffic split, shadows, ...) survives a restart. Blocking:
callers run these methods in a thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelplane.kit.errors import Aborted, AlreadyExists, NotFound
from modelplane.serving.batch_job import BatchJob
from modelplane.serving.deployment import Deployment

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS serving_deployments (
        name TEXT PRIMARY KEY, model TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS serving_batch_jobs (
        id TEXT PRIMARY KEY, deployment TEXT NOT NULL, create_time TEXT NOT NULL,
        body TEXT NOT NULL)""",
)


class DeploymentStore:
    """Deployments and batch jobs in one SQL database (``sqlite:///path`` or ``postgresql://``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg

            self._pg = True
            self._conn: Any = psycopg.connect(url, autocommit=True)
            self._ph = "%s"
        else:
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:") else url
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._pg = False
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._ph = "?"
        with self._tx() as cur:
            for stmt in _SCHEMA:
                cur.execute(stmt)

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            if self._pg:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            else:
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise

    def _q(self, sql: str) -> str:
        return sql.replace("?", self._ph)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- deployments --------------------------------------------------------------------
    def get(self, name: str) -> Deployment | None:
        with self._tx() as cur:
            cur.execute(self._q("SELECT body FROM serving_deployments WHERE name = ?"), (name,))
            row = cur.fetchone()
        return Deployment.from_dict(json.loads(row[0])) if row else None

    def list_deployments(self, *, after: str = "", limit: int = 1000, model: str = "") -> list[Deployment]:
        sql = "SELECT body FROM serving_deployments WHERE name > ?"
        args: list[Any] = [after]
        if model:
            sql += " AND model = ?"
            args.append(model)
        sql += " ORDER BY name LIMIT ?"
        args.append(limit)
        with self._tx() as cur:
            cur.execute(self._q(sql), args)
            rows = cur.fetchall()
        return [Deployment.from_dict(json.loads(r[0])) for r in rows]

    def create(self, d: Deployment) -> None:
        with self._tx() as cur:
            cur.execute(self._q("SELECT 1 FROM serving_deployments WHERE name = ?"), (d.name,))
            if cur.fetchone():
                raise AlreadyExists(f"deployment {d.name!r} already exists",
                                    reason="DEPLOYMENT_EXISTS", metadata={"deployment": d.name})
            cur.execute(self._q("INSERT INTO serving_deployments (name, model, etag, body) "
                                "VALUES (?, ?, ?, ?)"),
                        (d.name, d.model, d.etag, json.dumps(d.to_dict())))

    def replace(self, d: Deployment, *, expected_etag: str) -> None:
        """Store ``d`` if the stored etag is still ``expected_etag`` (else ABORTED)."""
        with self._tx() as cur:
            cur.execute(self._q("SELECT etag FROM serving_deployments WHERE name = ?"), (d.name,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"deployment {d.name!r} not found", reason="DEPLOYMENT_NOT_FOUND",
                               metadata={"deployment": d.name})
            if row[0] != expected_etag:
                raise Aborted(f"deployment {d.name!r} was changed concurrently; "
                              "read it again and retry", reason="ETAG_MISMATCH",
                              metadata={"deployment": d.name, "etag": row[0]})
            cur.execute(self._q("UPDATE serving_deployments SET model = ?, etag = ?, body = ? "
                                "WHERE name = ?"),
                        (d.model, d.etag, json.dumps(d.to_dict()), d.name))

    def delete(self, name: str) -> bool:
        with self._tx() as cur:
            cur.execute(self._q("DELETE FROM serving_deployments WHERE name = ?"), (name,))
            return bool(cur.rowcount)

    # --- batch jobs ---------------------------------------------------------------------
    def save_job(self, job: BatchJob) -> None:
        body = json.dumps(job.to_dict())
        with self._tx() as cur:
            cur.execute(self._q("DELETE FROM serving_batch_jobs WHERE id = ?"), (job.id,))
            cur.execute(self._q("INSERT INTO serving_batch_jobs (id, deployment, create_time, body)"
                                " VALUES (?, ?, ?, ?)"),
                        (job.id, job.deployment, job.create_time.isoformat(), body))

    def get_job(self, job_id: str) -> BatchJob | None:
        with self._tx() as cur:
            cur.execute(self._q("SELECT body FROM serving_batch_jobs WHERE id = ?"), (job_id,))
            row = cur.fetchone()
        return BatchJob.from_dict(json.loads(row[0])) if row else None

    def list_jobs(self, *, offset: int = 0, limit: int = 1000,
                  deployment: str = "") -> list[BatchJob]:
        sql = "SELECT body FROM serving_batch_jobs"
        args: list[Any] = []
        if deployment:
            sql += " WHERE deployment = ?"
            args.append(deployment)
        sql += " ORDER BY create_time DESC, id LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._tx() as cur:
            cur.execute(self._q(sql), args)
            rows = cur.fetchall()
        return [BatchJob.from_dict(json.loads(r[0])) for r in rows]
