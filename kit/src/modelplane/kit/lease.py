"""One actor among replicas: a lease row in a shared store.

A background job that must run once across replicas (observability's monitor
scheduler, serving's rollout controller) runs in every replica and acts only
while :meth:`Lease.held`. The store keeps one row per lease name with a holder
and an expiry in the *database's* clock; :class:`Lease` takes it when it is
free or expired and renews it.

``ttl_seconds`` is the promise: after the holder dies, another replica acts
within it. The row itself lasts ¾ of that (``term``), renewed every quarter of
``ttl_seconds``; the rest leaves a standby time to notice (it retries right
when the holder's row ends). The holder's local deadline is measured from
before the renewal was sent and is a little short of the term, so a holder cut
off from the store stops acting before anyone else may start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from typing import Protocol

log = logging.getLogger("modelplane.kit.lease")


class LeaseStore(Protocol):
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        """Take or renew ``name`` for ``holder`` for ``ttl_seconds``: ``(held, seconds
        left of the other holder's lease)``."""
        ...

    def release_lease(self, name: str, holder: str) -> None: ...


def replica_id() -> str:
    """``host:pid:random``: unique among replicas and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    def __init__(self, store: LeaseStore, name: str, ttl_seconds: float,
                 holder: str | None = None) -> None:
        self._store = store
        self.name = name
        self.ttl = ttl_seconds
        self.term = ttl_seconds * 0.75
        self.holder = holder or replica_id()
        self._valid_until = 0.0
        self._gained: asyncio.Event | None = None
        #: times this replica took the lease
        self.acquisitions = 0

    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    async def wait_gained(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if this replica takes the lease meanwhile."""
        if self._gained is None:
            self._gained = asyncio.Event()
        try:
            await asyncio.wait_for(self._gained.wait(), timeout)
        except TimeoutError:
            pass
        self._gained.clear()

    async def run(self) -> None:
        """Take and renew the lease until cancelled."""
        if self._gained is None:
            self._gained = asyncio.Event()
        while True:
            started = time.monotonic()
            try:
                held, remaining = await asyncio.to_thread(
                    self._store.acquire_lease, self.name, self.holder, self.term)
            except Exception as exc:  # noqa: BLE001 - the store may be away for a while
                log.warning("lease %s: %s", self.name, exc)
                await asyncio.sleep(min(self.ttl / 4, 1.0) * random.uniform(0.5, 1.0))
                continue  # keep what we held until its local deadline passes
            if held:
                was = self.held()
                self._valid_until = started + self.term * 0.9
                if not was:
                    self.acquisitions += 1
                    log.info("lease %s taken by %s", self.name, self.holder)
                    self._gained.set()
                delay = self.ttl / 4
            else:
                self._valid_until = 0.0
                # Try again right when the holder's lease ends (a little jitter so
                # standbys do not all ask at once), at least every quarter of the time.
                delay = min(remaining + random.uniform(0.02, 0.1), self.ttl / 4)
            await asyncio.sleep(max(delay, 0.02))

    def release(self) -> None:
        """Hand the lease over at once (a clean stop)."""
        if self.held():
            self._valid_until = 0.0
            self._store.release_lease(self.name, self.holder)
