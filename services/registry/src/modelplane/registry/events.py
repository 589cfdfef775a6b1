"""Following the event log: invalidate caches and feed watchers, never missing a change.

``EventHub.sync()`` guarantees that every event committed before it was called
has been applied (listeners told, watchers fed) when it returns. It stays
cheap enough to run on every resolve:

- SQLite: ``PRAGMA data_version`` on a connection of our own changes whenever
  another connection (the gRPC side or an ``mlflow server`` worker) commits to
  the registry database - a few microseconds, no query.
- PostgreSQL: ``SELECT max(seq)`` on a dedicated async connection, coalesced:
  callers that arrive while a probe is in flight share the next probe (which
  starts after they arrived), so under load there is one probe per round trip,
  not one per request. Writers serialise on an advisory lock, so seeing
  sequence N means seeing all before it.

A background task calls ``sync()`` every ``poll_seconds`` so watchers get
events even when nobody resolves.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from modelplane.kit.errors import ResourceExhausted, Unavailable
from modelplane.registry.history import RegistryHistory
from modelplane.registry.model import EventType, ModelEvent

log = logging.getLogger("modelplane.registry.events")

Listener = Callable[[Sequence[ModelEvent]], None]


class ChangeProbe(Protocol):
    async def token(self) -> Any:
        """A value that differs whenever an event was committed since the last call."""

    async def close(self) -> None: ...


class SqliteChangeProbe:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    async def token(self) -> Any:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    async def close(self) -> None:
        self._conn.close()


class PostgresChangeProbe:
    _QUERY = "SELECT coalesce(max(seq), 0) FROM modelplane_registry_events"

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None
        self._inflight: asyncio.Future[int] | None = None
        self._next: asyncio.Future[int] | None = None
        # the loop keeps only weak references to tasks: hold the probes until done
        self._tasks: set[asyncio.Task[None]] = set()

    def _start(self, fut: asyncio.Future[int]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(fut))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _query(self) -> int:
        import psycopg

        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                cur = await self._conn.execute(self._QUERY)
                row = await cur.fetchone()
                return int(row[0])
            except psycopg.OperationalError as exc:
                self._conn = None
                if attempt == 2:
                    raise Unavailable("registry database unreachable while checking for "
                                      "changes", reason="REGISTRY_DATABASE_UNAVAILABLE") from exc
        raise AssertionError("unreachable")

    async def _run(self, fut: asyncio.Future[int]) -> None:
        try:
            fut.set_result(await self._query())
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter
            fut.set_exception(exc)
        finally:
            self._inflight = None
            if self._next is not None:
                nxt, self._next = self._next, None
                self._inflight = nxt
                self._start(nxt)

    async def token(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._inflight is None:
            fut: asyncio.Future[int] = loop.create_future()
            self._inflight = fut
            self._start(fut)
        else:
            # The probe in flight may have started before our caller's change
            # became visible: wait for the next one.
            if self._next is None:
                self._next = loop.create_future()
            fut = self._next
        return await asyncio.shield(fut)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def make_probe(history: RegistryHistory) -> ChangeProbe:
    if history.postgres:
        # libpq's URL form: postgres://, postgresql:// or SQLAlchemy's postgresql+psycopg://
        return PostgresChangeProbe("postgresql://" + history.url.split("://", 1)[1])
    path = history.engine.url.database
    assert path, "SQLite registry database needs a file path"
    return SqliteChangeProbe(path)


@dataclass(eq=False)
class Subscription:
    model_names: frozenset[str]
    types: frozenset[EventType]
    queue: asyncio.Queue[ModelEvent] = field(default_factory=lambda: asyncio.Queue(10000))
    overflowed_at: int = 0

    def wants(self, ev: ModelEvent) -> bool:
        return ((not self.model_names or ev.model_name in self.model_names)
                and (not self.types or ev.type in self.types))


class EventHub:
    def __init__(self, history: RegistryHistory, probe: ChangeProbe,
                 poll_seconds: float = 0.2) -> None:
        self._history = history
        self._probe = probe
        self._poll_seconds = poll_seconds
        self._lock = asyncio.Lock()
        self._applied_token: Any = object()
        self.applied = 0
        self._listeners: list[Listener] = []
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        self.applied = await asyncio.to_thread(self._history.latest_sequence)
        self._applied_token = await self._probe.token()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._probe.close()

    async def _poll(self) -> None:
        while True:
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep polling through outages
                log.warning("event poll failed: %s", exc)
            await asyncio.sleep(self._poll_seconds)

    async def sync(self) -> None:
        """Apply every event committed before this call."""
        if await self._probe.token() == self._applied_token:
            return
        async with self._lock:
            token = await self._probe.token()
            if token == self._applied_token:
                return
            await self._apply_new()
            self._applied_token = token

    async def _apply_new(self) -> None:
        while True:
            batch = await asyncio.to_thread(self._history.events_after, self.applied, 1000)
            if not batch:
                return
            for listener in self._listeners:
                try:
                    listener(batch)
                except Exception:
                    log.exception("event listener failed")
            for ev in batch:
                for sub in self._subs:
                    if sub.overflowed_at or not sub.wants(ev):
                        continue
                    try:
                        sub.queue.put_nowait(ev)
                    except asyncio.QueueFull:
                        sub.overflowed_at = ev.sequence
            self.applied = batch[-1].sequence
            if len(batch) < 1000:
                return

    async def watch(self, model_names: Sequence[str], types: Sequence[EventType],
                    after_sequence: int | None) -> AsyncIterator[ModelEvent]:
        """WATCH_STARTED bookmark, then stored events after ``after_sequence``, then live ones."""
        sub = Subscription(frozenset(model_names), frozenset(types))
        self._subs.add(sub)
        try:
            await self.sync()
            start = self.applied
            yield ModelEvent(sequence=start, type=EventType.WATCH_STARTED,
                             event_time=datetime.now(UTC))
            if after_sequence is not None and after_sequence < start:
                cursor = after_sequence
                while cursor < start:
                    batch = await asyncio.to_thread(self._history.events_after, cursor, 1000,
                                                    start)
                    if not batch:
                        break
                    for ev in batch:
                        if sub.wants(ev):
                            yield ev
                    cursor = batch[-1].sequence
            while True:
                if sub.overflowed_at and sub.queue.empty():
                    raise ResourceExhausted(
                        f"the watcher fell behind: events from sequence {sub.overflowed_at} "
                        "were dropped; watch again with after_sequence set to the last "
                        "sequence received", reason="WATCHER_TOO_SLOW",
                        metadata={"dropped_from_sequence": str(sub.overflowed_at)})
                ev = await sub.queue.get()
                if ev.sequence <= start:
                    continue
                yield ev
        finally:
            self._subs.discard(sub)
