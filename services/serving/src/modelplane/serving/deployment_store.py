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

The rows are documents of ``modelplane.kit.documents``: the generation is its
write hook on the deployments collection, rollouts are compare-and-set on their
revision. Route stats (an upsert that adds) and the lease (database-clock
expiry) are not documents and stay SQL, through SQLAlchemy ``text()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from modelplane.kit.documents import (
    Collection,
    Document,
    DocumentStore,
    Transaction,
    document_table,
)
from modelplane.kit.errors import Aborted, AlreadyExists, NotFound
from modelplane.serving.batch_job import BatchJob
from modelplane.serving.deployment import Deployment
from modelplane.serving.rollout import Rollout, RolloutEvent, RolloutState

#: the PostgreSQL notification channel deployment writes are announced on
NOTIFY_CHANNEL = "serving_deployments"

metadata = sa.MetaData()
_deployments = document_table(
    "serving_deployments", metadata, ["name"], ["model", "etag"],
    # added to stores written before generations (0 = never announced): _migrate
    sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"))
_batch_jobs = document_table("serving_batch_jobs", metadata, ["id"],
                             ["deployment", "create_time"])
_generation = sa.Table(
    "serving_generation", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)
_rollouts = document_table("serving_rollouts", metadata, ["name"], ["deployment", "state"],
                           sa.Column("revision", sa.BigInteger, nullable=False))
_rollout_events = document_table(
    "serving_rollout_events", metadata, ["rollout"], [],
    sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False))
# request outcomes per deployment, version and minute, every replica's summed:
# kind = requests | errors | fallbacks | lat:<latency bucket> (see route_stats)
sa.Table(
    "serving_route_stats", metadata,
    sa.Column("deployment", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("bucket_start", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)
#: PostgreSQL only: SQLite is one process, its controller needs no lease
_pg_metadata = sa.MetaData()
_leases = sa.Table(
    "serving_leases", _pg_metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


def _next_generation(tx: Transaction, op: str, key: tuple[Any, ...]) -> dict[str, Any]:
    """Every deployment write's hook: the store-wide counter's next number, announced
    (sent at commit, only if the transaction commits)."""
    # A row lock on PostgreSQL, taken first: deployment writes are serialized across replicas.
    tx.execute(_generation.update().where(_generation.c.id == 1)
               .values(value=_generation.c.value + 1))
    generation = int(tx.execute(sa.select(_generation.c.value)
                                .where(_generation.c.id == 1)).scalar_one())
    tx.notify(NOTIFY_CHANNEL, {"name": key[0], "generation": generation})
    return {"generation": generation}


DEPLOYMENTS = Collection(_deployments, version="etag", on_write=_next_generation)
BATCH_JOBS = Collection(_batch_jobs)
ROLLOUTS = Collection(_rollouts, version="revision")
ROLLOUT_EVENTS = Collection(_rollout_events)


def _migrate(tx: Transaction) -> None:
    # Stores written before generations existed get the column (0 = never announced).
    columns = {c["name"] for c in sa.inspect(tx.connection).get_columns("serving_deployments")}
    if "generation" not in columns:
        tx.execute(sa.text("ALTER TABLE serving_deployments "
                           "ADD COLUMN generation BIGINT NOT NULL DEFAULT 0"))
    if tx.execute(sa.select(_generation.c.id).where(_generation.c.id == 1)).first() is None:
        tx.execute(_generation.insert().values(id=1, value=0))
    if tx.postgres:
        _pg_metadata.create_all(tx.connection, checkfirst=True)


class DeploymentStore:
    """Deployments and batch jobs in one SQL database (``sqlite:///path`` or ``postgresql://``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._docs = DocumentStore(url, metadata, scope="serving", setup=_migrate)

    @property
    def notifies(self) -> bool:
        """Are writes announced to other processes (PostgreSQL NOTIFY)?"""
        return self._docs.postgres

    def close(self) -> None:
        self._docs.close()

    # --- deployments --------------------------------------------------------------------
    @staticmethod
    def _deployment(doc: Document) -> Deployment:
        return replace(Deployment.from_dict(doc.data), generation=int(doc.columns["generation"]))

    @staticmethod
    def _columns(d: Deployment) -> dict[str, Any]:
        return {"name": d.name, "model": d.model, "etag": d.etag}

    def get(self, name: str) -> Deployment | None:
        with self._docs.transaction() as tx:
            doc = tx.get(DEPLOYMENTS, name)
        return self._deployment(doc) if doc else None

    def generations(self) -> dict[str, int]:
        """Every stored deployment's generation (what a replica compares on resync)."""
        with self._docs.transaction() as tx:
            rows = tx.execute(sa.select(_deployments.c.name, _deployments.c.generation))
            return {row[0]: int(row[1]) for row in rows}

    def list_deployments(self, *, after: str = "", limit: int = 1000,
                         model: str = "") -> list[Deployment]:
        with self._docs.transaction() as tx:
            docs = tx.select(DEPLOYMENTS, {"model": model}, order=("name",), after=(after,),
                             limit=limit)
        return [self._deployment(d) for d in docs]

    def create(self, d: Deployment) -> Deployment:
        """Store a new deployment; returns it with its generation."""
        with self._docs.transaction() as tx:
            stored = tx.insert(DEPLOYMENTS, self._columns(d), d.to_dict(), exists=lambda: (
                AlreadyExists(f"deployment {d.name!r} already exists",
                              reason="DEPLOYMENT_EXISTS", metadata={"deployment": d.name})))
        return replace(d, generation=stored["generation"])

    def replace(self, d: Deployment, *, expected_etag: str,
                also: Callable[[Any], None] | None = None) -> Deployment:
        """Store ``d`` if the stored etag is still ``expected_etag`` (else ABORTED);
        returns it with its new generation. ``also(transaction)`` runs in the same
        transaction (a rollout records its step with the traffic change; if it
        raises, neither is written)."""
        def changed(etag: Any) -> Aborted:
            return Aborted(f"deployment {d.name!r} was changed concurrently; "
                           "read it again and retry", reason="ETAG_MISMATCH",
                           metadata={"deployment": d.name, "etag": etag})

        with self._docs.transaction() as tx:
            stored = tx.replace(
                DEPLOYMENTS, self._columns(d), d.to_dict(), expected=expected_etag,
                missing=lambda: NotFound(f"deployment {d.name!r} not found",
                                         reason="DEPLOYMENT_NOT_FOUND",
                                         metadata={"deployment": d.name}),
                changed=changed)
            if also is not None:
                also(tx)
        return replace(d, generation=stored["generation"])

    def delete(self, name: str) -> int | None:
        """Delete a deployment; the generation of the deletion, or None if there was none
        (then no number is taken and nothing announced)."""
        with self._docs.transaction() as tx:
            stamp = tx.delete(DEPLOYMENTS, name)
        return None if stamp is None else int(stamp["generation"])

    # --- batch jobs ---------------------------------------------------------------------
    def save_job(self, job: BatchJob) -> None:
        with self._docs.transaction() as tx:
            tx.upsert(BATCH_JOBS, {"id": job.id, "deployment": job.deployment,
                                   "create_time": job.create_time.isoformat()}, job.to_dict())

    def get_job(self, job_id: str) -> BatchJob | None:
        with self._docs.transaction() as tx:
            doc = tx.get(BATCH_JOBS, job_id)
        return BatchJob.from_dict(doc.data) if doc else None

    def list_jobs(self, *, offset: int = 0, limit: int = 1000,
                  deployment: str = "") -> list[BatchJob]:
        with self._docs.transaction() as tx:
            docs = tx.select(BATCH_JOBS, {"deployment": deployment},
                             order=("-create_time", "id"), limit=limit, offset=offset)
        return [BatchJob.from_dict(d.data) for d in docs]

    # --- request outcomes per version (the operations check) ----------------------------
    # Not documents: counters every replica adds to. SQL through text() (the same on both).
    def add_route_stats(self, rows: Iterable[tuple[str, str, int, str, int]]) -> None:
        """Add counts ``(deployment, version, bucket_start, kind, count)`` to the
        stored ones (an upsert that adds: replicas add concurrently, none overwrites)."""
        params = [{"deployment": d, "version": v, "bucket_start": b, "kind": k, "count": n}
                  for d, v, b, k, n in rows]
        if not params:
            return
        with self._docs.transaction() as tx:
            tx.execute(sa.text(
                "INSERT INTO serving_route_stats (deployment, version, bucket_start, kind, count) "
                "VALUES (:deployment, :version, :bucket_start, :kind, :count) "
                "ON CONFLICT (deployment, version, bucket_start, kind) "
                "DO UPDATE SET count = serving_route_stats.count + excluded.count"), params)

    def route_stats(self, deployment: str, version: str, start: float, end: float,
                    bucket_seconds: int = 60) -> dict[str, int]:
        """Counts by kind of the buckets that start in ``(start - bucket_seconds, end]``
        (Unix seconds): the bucket holding ``start`` is included whole."""
        with self._docs.transaction() as tx:
            rows = tx.execute(sa.text(
                "SELECT kind, SUM(count) FROM serving_route_stats WHERE deployment = :deployment "
                "AND version = :version AND bucket_start > :after AND bucket_start <= :end "
                "GROUP BY kind"), {"deployment": deployment, "version": version,
                                   "after": int(start) - bucket_seconds, "end": int(end)})
            return {row[0]: int(row[1]) for row in rows}

    def prune_route_stats(self, before: float) -> int:
        with self._docs.transaction() as tx:
            done = tx.execute(sa.text("DELETE FROM serving_route_stats WHERE bucket_start < :b"),
                              {"b": int(before)})
            return int(done.rowcount or 0)

    # --- rollouts -----------------------------------------------------------------------
    # A rollout row carries a revision; every write is a compare-and-set on it
    # (``write_rollout``) with its event keyed by the new revision, in one
    # transaction - so two controllers that both believe they lead cannot both
    # make the same transition, and an event exists exactly when its change does.
    def write_rollout(self, tx: Transaction, r: Rollout, expected_revision: int,
                      event: RolloutEvent | None) -> None:
        """Inside a transaction (``tx``, what ``replace(also=)`` is given): store ``r``
        (its revision already ``expected_revision + 1``) if the stored one is still
        ``expected_revision`` (0 = a new rollout), else ABORTED; and its event, if any."""
        if expected_revision == 0:
            tx.insert(ROLLOUTS, {"name": r.name, "deployment": r.deployment,
                                 "state": r.state.value, "revision": r.revision},
                      r.to_dict(), exists=lambda: AlreadyExists(
                          f"rollout {r.name!r} already exists", reason="ROLLOUT_EXISTS",
                          metadata={"rollout": r.name}))
        else:
            def changed(*_: Any) -> Aborted:
                return Aborted(f"rollout {r.name!r} was changed concurrently (expected "
                               f"revision {expected_revision})", reason="ROLLOUT_CHANGED",
                               metadata={"rollout": r.name})

            tx.replace(ROLLOUTS, {"name": r.name, "state": r.state.value,
                                  "revision": r.revision}, r.to_dict(),
                       expected=expected_revision, missing=changed, changed=changed)
        if event is not None:
            tx.insert(ROLLOUT_EVENTS, {"rollout": r.name, "sequence": event.sequence},
                      event.to_dict())

    def save_rollout(self, r: Rollout, expected_revision: int,
                     event: RolloutEvent | None = None) -> None:
        """``write_rollout`` in a transaction of its own (no traffic change)."""
        with self._docs.transaction() as tx:
            self.write_rollout(tx, r, expected_revision, event)

    def active_rollouts(self, tx: Transaction, deployment: str) -> list[str]:
        """Inside a transaction: names of ``deployment``'s RUNNING, PAUSED or PROMOTING
        rollouts (checked in the transaction that stores the deployment, whose
        generation row lock serializes it against another replica's create)."""
        states = [s.value for s in RolloutState if s.active]
        docs = tx.select(ROLLOUTS, {"deployment": deployment, "state": states})
        return [d.columns["name"] for d in docs]

    def get_rollout(self, name: str) -> Rollout | None:
        with self._docs.transaction() as tx:
            doc = tx.get(ROLLOUTS, name)
        return Rollout.from_dict(doc.data) if doc else None

    def list_rollouts(self, *, after: str = "", limit: int = 1000, deployment: str = "",
                      states: tuple[RolloutState, ...] = ()) -> list[Rollout]:
        where: dict[str, Any] = {"deployment": deployment}
        if states:
            where["state"] = [s.value for s in states]
        with self._docs.transaction() as tx:
            docs = tx.select(ROLLOUTS, where, order=("name",), after=(after,), limit=limit)
        return [Rollout.from_dict(d.data) for d in docs]

    def rollout_events(self, name: str, *, after: int = 0, limit: int = 1000
                       ) -> list[RolloutEvent]:
        with self._docs.transaction() as tx:
            docs = tx.select(ROLLOUT_EVENTS, {"rollout": name}, order=("sequence",),
                             after=(after,), limit=limit)
        return [RolloutEvent.from_dict(d.data) for d in docs]

    # --- the rollout controller's lease ---------------------------------------------------
    # Not a document: expiry is compared in the database's clock. SQL through text().
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        """Take or renew ``name`` for ``holder`` until ``ttl_seconds`` from now in the
        database's clock (replicas' clocks need not agree); ``(held, seconds left of
        the other holder's lease)``. SQLite: one process, always held."""
        if not self.notifies:
            return True, ttl_seconds
        with self._docs.transaction() as tx:
            taken = tx.execute(sa.text(
                "INSERT INTO serving_leases (name, holder, expires_at) "
                "VALUES (:name, :holder, now() + make_interval(secs => :ttl)) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE serving_leases.holder = excluded.holder "
                "OR serving_leases.expires_at <= now() RETURNING true"),
                {"name": name, "holder": holder, "ttl": ttl_seconds}).first()
            if taken is not None:
                return True, ttl_seconds
            left = tx.execute(sa.text(
                "SELECT greatest(extract(epoch FROM expires_at - now()), 0)::float8 "
                "FROM serving_leases WHERE name = :name"), {"name": name}).scalar_one_or_none()
        return False, float(left) if left is not None else 0.0

    def release_lease(self, name: str, holder: str) -> None:
        if self.notifies:
            with self._docs.transaction() as tx:
                tx.execute(_leases.delete().where(_leases.c.name == name,
                                                  _leases.c.holder == holder))
