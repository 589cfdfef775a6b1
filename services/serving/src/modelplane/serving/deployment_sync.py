"""Replicas share deployments: PostgreSQL LISTEN/NOTIFY on serving's own table.

Every deployment write commits a ``NOTIFY serving_deployments`` carrying the
deployment name and the write's generation (see ``deployment_store``). Each
replica — the writer too — holds one extra connection that LISTENs and hands
each ``(name, generation)`` to ``on_change``, which reloads that row and applies
it unless it already serves that generation (``DeploymentService.sync``).

Missed notifications are repaired, not assumed away:

- after every (re)connect, LISTEN comes first and then ``on_resync`` compares
  every row's generation with what the replica serves, so a change committed
  while the connection was down is applied, and none committed between the two
  steps can be lost;
- the connection is re-established with exponential backoff and jitter (capped,
  never given up: the database is the replica's own store), with TCP keepalives
  so a silently dead peer is noticed;
- every ``resync_seconds`` without a notification the same comparison runs once
  more (a cheap ``SELECT name, generation``).

No grpc here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from modelplane.kit.backoff import Backoff
from modelplane.serving.deployment_store import NOTIFY_CHANNEL
from modelplane.serving.serving_metrics import ServingMetrics

log = logging.getLogger("modelplane.serving.deployment_sync")

#: reconnect backoff of the LISTEN connection: 0.5 s doubling to at most 10 s, jittered
RECONNECT_INITIAL_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
#: a full generation comparison this often even when nothing was announced
RESYNC_SECONDS = 30.0
#: how the LISTEN connection shows in pg_stat_activity
APPLICATION_NAME = "modelplane-serving-deployment-feed"


@dataclass(frozen=True)
class ChangeFeedState:
    """What readiness reports about the LISTEN connection."""

    connected: bool
    consecutive_failures: int
    reconnects: int
    last_error: str
    next_attempt_in_seconds: float


class DeploymentChangeFeed:
    """LISTENs for deployment changes and hands them to the deployment service."""

    def __init__(self, url: str, on_change: Callable[[str, int], Awaitable[None]],
                 on_resync: Callable[[], Awaitable[None]], *,
                 metrics: ServingMetrics | None = None,
                 backoff: Backoff | None = None,
                 resync_seconds: float = RESYNC_SECONDS) -> None:
        self._url = url
        self._on_change = on_change
        self._on_resync = on_resync
        self._metrics = metrics
        self._backoff = backoff or Backoff(RECONNECT_INITIAL_SECONDS, RECONNECT_MAX_SECONDS)
        self._resync_seconds = resync_seconds
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._reconnects = 0
        self._last_error = ""
        self._next_attempt = 0.0
        #: set once the first LISTEN + resync has completed
        self.ready = asyncio.Event()

    def state(self) -> ChangeFeedState:
        wait = max(0.0, self._next_attempt - time.monotonic()) if not self._connected else 0.0
        return ChangeFeedState(self._connected, self._backoff.failures, self._reconnects,
                               self._last_error, round(wait, 3))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="deployment-change-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if self._metrics is not None:
            self._metrics.sync_connected.set(1 if connected else 0)

    async def _run(self) -> None:
        import psycopg

        first = True
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, application_name=APPLICATION_NAME,
                    # notice a peer that vanished without a FIN within ~25 s
                    keepalives=1, keepalives_idle=10, keepalives_interval=5,
                    keepalives_count=3)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._set_connected(True)
                    if not first:
                        self._reconnects += 1
                        if self._metrics is not None:
                            self._metrics.sync_reconnects.inc()
                        log.info("deployment change feed reconnected after %d failure(s); "
                                 "resyncing every deployment", self._backoff.failures)
                    first = False
                    self._backoff.reset()
                    self._last_error = ""
                    await self._on_resync()  # after LISTEN: nothing falls in between
                    self.ready.set()
                    await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect with backoff
                self._set_connected(False)
                self._last_error = f"{type(exc).__name__}: {exc}".strip()
                delay = self._backoff.failed()
                self._next_attempt = time.monotonic() + delay
                level = logging.WARNING if self._backoff.failures in (1, 5) \
                    or self._backoff.failures % 50 == 0 else logging.DEBUG
                log.log(level, "deployment change feed failed (%s); reconnecting in %.1fs "
                        "(failure %d)", self._last_error, delay, self._backoff.failures)
                await asyncio.sleep(delay)

    async def _listen(self, conn: Any) -> None:
        while True:
            async for n in conn.notifies(timeout=self._resync_seconds):
                try:
                    body = json.loads(n.payload)
                    name, generation = str(body["name"]), int(body["generation"])
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a malformed deployment notification: %r", n.payload)
                    continue
                await self._on_change(name, generation)
            # quiet for resync_seconds (or the generator ended): compare everything once
            await conn.execute("SELECT 1")  # raises if the connection is gone
            await self._on_resync()
