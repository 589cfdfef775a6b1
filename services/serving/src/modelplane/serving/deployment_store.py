"""Where deployments and batch jobs persist: SQLite (embedded default) or PostgreSQL.

Both keep each record as JSON next to the columns it is looked up by, so a
runtime change (traffic split, shadows, ...) survives a restart. Blocking:
callers run these methods in a thread.

Every deployment write (create, replace, delete) takes the next number of one
store-wide counter (``serving_generation``) and stores it in the row's
``generation`` column. On PostgreSQL the same transaction sends
``NOTIFY serving_deployments, '{"name": ..., "generation": ...}'``, so the
notification goes out only if the write commits, and after it; every replica
LISTENs (see ``deployment_sync``) and applies the row. The counter is
store-wide, not per row, so a deployment deleted and created again never goes
back to a generation a replica has already seen. SQLite is one process: no
notification.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelplane.kit.errors import Aborted, AlreadyExists, NotFound
from modelplane.kit.pgschema import lock_schema
from modelplane.serving.batch_job import BatchJob
from modelplane.serving.deployment import Deployment

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS serving_deployments (
        name TEXT PRIMARY KEY, model TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS serving_batch_jobs (
        id TEXT PRIMARY KEY, deployment TEXT NOT NULL, create_time TEXT NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS serving_generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
)
#: the PostgreSQL notification channel deployment writes are announced on
NOTIFY_CHANNEL = "serving_deployments"


class _NothingDeleted(Exception):
    pass


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
            if self._pg:
                lock_schema(cur, "serving")
            for stmt in _SCHEMA:
                cur.execute(stmt)
            self._migrate(cur)

    def _migrate(self, cur: Any) -> None:
        # Stores written before generations existed get the column (0 = never announced).
        if self._pg:
            cur.execute("ALTER TABLE serving_deployments "
                        "ADD COLUMN IF NOT EXISTS generation BIGINT NOT NULL DEFAULT 0")
            cur.execute("INSERT INTO serving_generation (id, value) VALUES (1, 0) "
                        "ON CONFLICT (id) DO NOTHING")
        else:
            cur.execute("PRAGMA table_info(serving_deployments)")
            if "generation" not in {row[1] for row in cur.fetchall()}:
                cur.execute("ALTER TABLE serving_deployments "
                            "ADD COLUMN generation BIGINT NOT NULL DEFAULT 0")
            cur.execute("INSERT OR IGNORE INTO serving_generation (id, value) VALUES (1, 0)")

    @property
    def notifies(self) -> bool:
        """Are writes announced to other processes (PostgreSQL NOTIFY)?"""
        return self._pg

    def _next_generation(self, cur: Any) -> int:
        # A row lock on PostgreSQL: deployment writes are serialized across replicas.
        cur.execute("UPDATE serving_generation SET value = value + 1 WHERE id = 1")
        cur.execute("SELECT value FROM serving_generation WHERE id = 1")
        return int(cur.fetchone()[0])

    def _announce(self, cur: Any, name: str, generation: int) -> None:
        if self._pg:  # sent at commit, only if the transaction commits
            cur.execute("SELECT pg_notify(%s, %s)",
                        (NOTIFY_CHANNEL, json.dumps({"name": name, "generation": generation})))

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
    @staticmethod
    def _row(row: Any) -> Deployment:
        return replace(Deployment.from_dict(json.loads(row[0])), generation=int(row[1]))

    def get(self, name: str) -> Deployment | None:
        with self._tx() as cur:
            cur.execute(self._q("SELECT body, generation FROM serving_deployments WHERE name = ?"),
                        (name,))
            row = cur.fetchone()
        return self._row(row) if row else None

    def generations(self) -> dict[str, int]:
        """Every stored deployment's generation (what a replica compares on resync)."""
        with self._tx() as cur:
            cur.execute("SELECT name, generation FROM serving_deployments")
            return {name: int(gen) for name, gen in cur.fetchall()}

    def list_deployments(self, *, after: str = "", limit: int = 1000,
                         model: str = "") -> list[Deployment]:
        sql = "SELECT body, generation FROM serving_deployments WHERE name > ?"
        args: list[Any] = [after]
        if model:
            sql += " AND model = ?"
            args.append(model)
        sql += " ORDER BY name LIMIT ?"
        args.append(limit)
        with self._tx() as cur:
            cur.execute(self._q(sql), args)
            rows = cur.fetchall()
        return [self._row(r) for r in rows]

    def create(self, d: Deployment) -> Deployment:
        """Store a new deployment; returns it with its generation."""
        with self._tx() as cur:
            cur.execute(self._q("SELECT 1 FROM serving_deployments WHERE name = ?"), (d.name,))
            if cur.fetchone():
                raise AlreadyExists(f"deployment {d.name!r} already exists",
                                    reason="DEPLOYMENT_EXISTS", metadata={"deployment": d.name})
            d = replace(d, generation=self._next_generation(cur))
            cur.execute(self._q("INSERT INTO serving_deployments "
                                "(name, model, etag, body, generation) VALUES (?, ?, ?, ?, ?)"),
                        (d.name, d.model, d.etag, json.dumps(d.to_dict()), d.generation))
            self._announce(cur, d.name, d.generation)
        return d

    def replace(self, d: Deployment, *, expected_etag: str) -> Deployment:
        """Store ``d`` if the stored etag is still ``expected_etag`` (else ABORTED);
        returns it with its new generation."""
        with self._tx() as cur:
            generation = self._next_generation(cur)  # first: serializes concurrent writers
            cur.execute(self._q("SELECT etag FROM serving_deployments WHERE name = ?"), (d.name,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"deployment {d.name!r} not found", reason="DEPLOYMENT_NOT_FOUND",
                               metadata={"deployment": d.name})
            if row[0] != expected_etag:
                raise Aborted(f"deployment {d.name!r} was changed concurrently; "
                              "read it again and retry", reason="ETAG_MISMATCH",
                              metadata={"deployment": d.name, "etag": row[0]})
            d = replace(d, generation=generation)
            cur.execute(self._q("UPDATE serving_deployments SET model = ?, etag = ?, body = ?, "
                                "generation = ? WHERE name = ?"),
                        (d.model, d.etag, json.dumps(d.to_dict()), d.generation, d.name))
            self._announce(cur, d.name, d.generation)
        return d

    def delete(self, name: str) -> int | None:
        """Delete a deployment; the generation of the deletion, or None if there was none."""
        try:
            with self._tx() as cur:
                generation = self._next_generation(cur)
                cur.execute(self._q("DELETE FROM serving_deployments WHERE name = ?"), (name,))
                if not cur.rowcount:
                    raise _NothingDeleted  # rolls the counter back: nothing changed
                self._announce(cur, name, generation)
        except _NothingDeleted:
            return None
        return generation

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
