"""One writer at a time per feature view's online rows, across processes.

The newest-event rule (``FeatureRepository.push_conformed``) reads the stored
event times, then writes only newer rows. Two replicas pushing the same keys
could interleave between the read and the write and leave an older row over a
newer one. This lock spans the read-and-write in every process that shares
the online store:

* SQLite (one host): an exclusive ``flock`` on a file beside the database;
* PostgreSQL: a session advisory lock, keyed by project and view;
* Redis: a Redis lock (``SET NX`` with an expiry, released by its owner
  only), so a writer killed mid-write frees it after ``REDIS_LOCK_SECONDS``.

Locks are per view: pushes to different views never wait for each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelplane.featurestore.settings import FeatureStoreSettings

#: a Redis lock outlives a killed writer by at most this long
REDIS_LOCK_SECONDS = 30.0
#: how long a writer waits for another's write before the push fails
WAIT_SECONDS = 60.0


class OnlineWriteLock:
    def __init__(self, kind: str, project: str, *, sqlite_path: Path | None = None,
                 postgres_conninfo: str = "", redis_url: str = "") -> None:
        self.kind = kind
        self.project = project
        self._sqlite_path = sqlite_path
        self._pg = postgres_conninfo
        self._redis_url = redis_url
        self._redis: Any = None
        self._pg_conn: Any = None
        self._local = threading.RLock()

    @classmethod
    def for_settings(cls, settings: FeatureStoreSettings) -> OnlineWriteLock:
        """The lock every replica with these settings takes (each its own handle)."""
        from modelplane.featurestore.feast_config import PostgresParams

        return cls(settings.online_store, settings.project,
                   sqlite_path=settings.data_dir / "online_store.db",
                   postgres_conninfo=(PostgresParams.from_url(settings.database_url).conninfo
                                      if settings.online_store == "postgres" else ""),
                   redis_url=settings.redis_url)

    def _name(self, view: str) -> str:
        return f"modelplane_online:{self.project}:{view}"

    @contextlib.contextmanager
    def hold(self, view: str) -> Iterator[None]:
        if self.kind == "postgres":
            with self._postgres(view):
                yield
        elif self.kind == "redis":
            with self._redis_lock(view):
                yield
        else:
            with self._file(view):
                yield

    @contextlib.contextmanager
    def _file(self, view: str) -> Iterator[None]:
        assert self._sqlite_path is not None
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in view)
        path = self._sqlite_path.with_name(f"{self._sqlite_path.name}.{safe}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def _postgres(self, view: str) -> Iterator[None]:
        import psycopg

        with self._local:  # one connection, kept; a broken one is replaced
            conn = self._pg_conn
            if conn is None or conn.closed or conn.broken:
                conn = self._pg_conn = psycopg.connect(self._pg, autocommit=True)
                conn.execute(f"SET lock_timeout = {int(WAIT_SECONDS * 1000)}")
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (self._name(view),))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self._name(view),))

    @contextlib.contextmanager
    def _redis_lock(self, view: str) -> Iterator[None]:
        with self._local:
            if self._redis is None:
                import redis

                self._redis = redis.Redis.from_url(self._redis_url)
        lock = self._redis.lock(self._name(view), timeout=REDIS_LOCK_SECONDS,
                                blocking_timeout=WAIT_SECONDS)
        if not lock.acquire():
            from modelplane.kit.errors import Unavailable

            raise Unavailable(f"another writer held feature view {view!r}'s online rows "
                              f"for {WAIT_SECONDS:.0f} s", reason="ONLINE_WRITE_BUSY",
                              metadata={"feature_view": view})
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # expired meanwhile: nothing to release
                lock.release()
