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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelplane.kit.errors import Aborted, AlreadyExists, NotFound
from modelplane.kit.pgschema import lock_schema
from modelplane.serving.batch_job import BatchJob
from modelplane.serving.deployment import Deployment
from modelplane.serving.rollout import Rollout, RolloutEvent, RolloutState

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS serving_deployments (
        name TEXT PRIMARY KEY, model TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS serving_batch_jobs (
        id TEXT PRIMARY KEY, deployment TEXT NOT NULL, create_time TEXT NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS serving_generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS serving_rollouts (
        name TEXT PRIMARY KEY, deployment TEXT NOT NULL, state TEXT NOT NULL,
        revision BIGINT NOT NULL, body TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS serving_rollout_events (
        rollout TEXT NOT NULL, sequence BIGINT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (rollout, sequence))""",
    # request outcomes per deployment, version and minute, every replica's summed:
    # kind = requests | errors | fallbacks | lat:<latency bucket> (see route_stats)
    """CREATE TABLE IF NOT EXISTS serving_route_stats (
        deployment TEXT NOT NULL, version TEXT NOT NULL, bucket_start BIGINT NOT NULL,
        kind TEXT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (deployment, version, bucket_start, kind))""",
)
#: PostgreSQL only: SQLite is one process, its controller needs no lease
_PG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS serving_leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)""",
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
            for stmt in _SCHEMA + (_PG_SCHEMA if self._pg else ()):
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

    def replace(self, d: Deployment, *, expected_etag: str,
                also: Callable[[Any], None] | None = None) -> Deployment:
        """Store ``d`` if the stored etag is still ``expected_etag`` (else ABORTED);
        returns it with its new generation. ``also(cursor)`` runs in the same
        transaction (a rollout records its step with the traffic change; if it
        raises, neither is written)."""
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
            if also is not None:
                also(cur)
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

    # --- request outcomes per version (the operations check) ----------------------------
    def add_route_stats(self, rows: Iterable[tuple[str, str, int, str, int]]) -> None:
        """Add counts ``(deployment, version, bucket_start, kind, count)`` to the
        stored ones (an upsert that adds: replicas add concurrently, none overwrites)."""
        rows = list(rows)
        if not rows:
            return
        sql = self._q("INSERT INTO serving_route_stats (deployment, version, bucket_start, "
                      "kind, count) VALUES (?, ?, ?, ?, ?) ON CONFLICT (deployment, version, "
                      "bucket_start, kind) DO UPDATE SET count = serving_route_stats.count "
                      "+ excluded.count")
        with self._tx() as cur:
            cur.executemany(sql, rows)

    def route_stats(self, deployment: str, version: str, start: float, end: float,
                    bucket_seconds: int = 60) -> dict[str, int]:
        """Counts by kind of the buckets that start in ``(start - bucket_seconds, end]``
        (Unix seconds): the bucket holding ``start`` is included whole."""
        with self._tx() as cur:
            cur.execute(self._q("SELECT kind, SUM(count) FROM serving_route_stats WHERE "
                                "deployment = ? AND version = ? AND bucket_start > ? AND "
                                "bucket_start <= ? GROUP BY kind"),
                        (deployment, version, int(start) - bucket_seconds, int(end)))
            return {kind: int(n) for kind, n in cur.fetchall()}

    def prune_route_stats(self, before: float) -> int:
        with self._tx() as cur:
            cur.execute(self._q("DELETE FROM serving_route_stats WHERE bucket_start < ?"),
                        (int(before),))
            return int(cur.rowcount or 0)

    # --- rollouts -----------------------------------------------------------------------
    # A rollout row carries a revision; every write is a compare-and-set on it
    # (``write_rollout``) with its event keyed by the new revision, in one
    # transaction - so two controllers that both believe they lead cannot both
    # make the same transition, and an event exists exactly when its change does.
    def write_rollout(self, cur: Any, r: Rollout, expected_revision: int,
                      event: RolloutEvent | None) -> None:
        """Inside a transaction (``cur``): store ``r`` (its revision already
        ``expected_revision + 1``) if the stored one is still ``expected_revision``
        (0 = a new rollout), else ABORTED; and its event, if any."""
        body = json.dumps(r.to_dict())
        if expected_revision == 0:
            cur.execute(self._q("SELECT 1 FROM serving_rollouts WHERE name = ?"), (r.name,))
            if cur.fetchone():
                raise AlreadyExists(f"rollout {r.name!r} already exists",
                                    reason="ROLLOUT_EXISTS", metadata={"rollout": r.name})
            cur.execute(self._q("INSERT INTO serving_rollouts (name, deployment, state, revision,"
                                " body) VALUES (?, ?, ?, ?, ?)"),
                        (r.name, r.deployment, r.state.value, r.revision, body))
        else:
            cur.execute(self._q("UPDATE serving_rollouts SET state = ?, revision = ?, body = ? "
                                "WHERE name = ? AND revision = ?"),
                        (r.state.value, r.revision, body, r.name, expected_revision))
            if cur.rowcount != 1:
                raise Aborted(f"rollout {r.name!r} was changed concurrently (expected "
                              f"revision {expected_revision})", reason="ROLLOUT_CHANGED",
                              metadata={"rollout": r.name})
        if event is not None:
            cur.execute(self._q("INSERT INTO serving_rollout_events (rollout, sequence, body) "
                                "VALUES (?, ?, ?)"),
                        (r.name, event.sequence, json.dumps(event.to_dict())))

    def save_rollout(self, r: Rollout, expected_revision: int,
                     event: RolloutEvent | None = None) -> None:
        """``write_rollout`` in a transaction of its own (no traffic change)."""
        with self._tx() as cur:
            self.write_rollout(cur, r, expected_revision, event)

    def active_rollouts(self, cur: Any, deployment: str) -> list[str]:
        """Inside a transaction: names of ``deployment``'s RUNNING, PAUSED or PROMOTING
        rollouts (checked in the transaction that stores the deployment, whose
        generation row lock serializes it against another replica's create)."""
        states = [s.value for s in RolloutState if s.active]
        cur.execute(self._q("SELECT name FROM serving_rollouts WHERE deployment = ? AND state IN ("
                            + ", ".join("?" for _ in states) + ")"), (deployment, *states))
        return [row[0] for row in cur.fetchall()]

    def get_rollout(self, name: str) -> Rollout | None:
        with self._tx() as cur:
            cur.execute(self._q("SELECT body FROM serving_rollouts WHERE name = ?"), (name,))
            row = cur.fetchone()
        return Rollout.from_dict(json.loads(row[0])) if row else None

    def list_rollouts(self, *, after: str = "", limit: int = 1000, deployment: str = "",
                      states: tuple[RolloutState, ...] = ()) -> list[Rollout]:
        sql = "SELECT body FROM serving_rollouts WHERE name > ?"
        args: list[Any] = [after]
        if deployment:
            sql += " AND deployment = ?"
            args.append(deployment)
        if states:
            sql += " AND state IN (" + ", ".join("?" for _ in states) + ")"
            args += [s.value for s in states]
        sql += " ORDER BY name LIMIT ?"
        args.append(limit)
        with self._tx() as cur:
            cur.execute(self._q(sql), args)
            rows = cur.fetchall()
        return [Rollout.from_dict(json.loads(r[0])) for r in rows]

    def rollout_events(self, name: str, *, after: int = 0, limit: int = 1000
                       ) -> list[RolloutEvent]:
        with self._tx() as cur:
            cur.execute(self._q("SELECT body FROM serving_rollout_events WHERE rollout = ? "
                                "AND sequence > ? ORDER BY sequence LIMIT ?"),
                        (name, after, limit))
            rows = cur.fetchall()
        return [RolloutEvent.from_dict(json.loads(r[0])) for r in rows]

    # --- the rollout controller's lease ---------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        """Take or renew ``name`` for ``holder`` until ``ttl_seconds`` from now in the
        database's clock (replicas' clocks need not agree); ``(held, seconds left of
        the other holder's lease)``. SQLite: one process, always held."""
        if not self._pg:
            return True, ttl_seconds
        with self._tx() as cur:
            cur.execute("INSERT INTO serving_leases (name, holder, expires_at) "
                        "VALUES (%s, %s, now() + make_interval(secs => %s)) "
                        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                        "expires_at = excluded.expires_at "
                        "WHERE serving_leases.holder = excluded.holder "
                        "OR serving_leases.expires_at <= now() RETURNING true",
                        (name, holder, ttl_seconds))
            if cur.fetchone() is not None:
                return True, ttl_seconds
            cur.execute("SELECT greatest(extract(epoch FROM expires_at - now()), 0)::float8 "
                        "FROM serving_leases WHERE name = %s", (name,))
            row = cur.fetchone()
        return False, float(row[0]) if row else 0.0

    def release_lease(self, name: str, holder: str) -> None:
        if self._pg:
            with self._tx() as cur:
                cur.execute("DELETE FROM serving_leases WHERE name = %s AND holder = %s",
                            (name, holder))
