"""Alert webhooks, delivered at least once.

An alert's webhook call is a row in the store's outbox, written in the same
transaction as the alert (:class:`~.store.base.NewDelivery`). The lease holder
runs one :class:`WebhookDispatcher`: it claims due rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; a claim hides the row for a while, so a second claimer
never sends the same delivery at the same time, and a sender that dies gives it
back when the claim runs out) and sends them on a bounded pool of worker
threads — not a thread per alert.

Each attempt is one POST of the alert as JSON with ``Idempotency-Key`` (the
alert id for its FIRING event, ``<id>-resolved`` for its resolution — the same on
every attempt, so a receiver can drop repeats), ``X-Modelplane-Event`` and
``X-Modelplane-Delivery-Attempt``, under the outbound policy
(:mod:`modelplane.kit.outbound`): checked after DNS resolution, connected to the
checked address, redirects not followed, a timeout, a bounded response read.

Outcome of an attempt: a 2xx answer delivers it; 408, 425, 429, 5xx and network
errors retry after an exponential backoff with jitter and a cap, until the
attempts are used up (FAILED); another answer — a redirect included — fails it
at once; a URL the policy refuses now is REFUSED (never sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from modelplane.kit.errors import InvalidArgument
from modelplane.kit.outbound import (
    OutboundFailed,
    OutboundPolicy,
    OutboundRefused,
    OutboundResponse,
    post_json,
)
from modelplane.observability.monitors import MonitorLease, backoff_delay
from modelplane.observability.store.base import DeliveryState, EvaluationStore, WebhookDelivery

log = logging.getLogger("modelplane.observability.webhooks")

RETRY_STATUSES = frozenset({408, 425, 429})

Post = Callable[..., OutboundResponse]


@dataclass(frozen=True)
class WebhookSettings:
    workers: int = 4
    timeout_seconds: float = 5.0
    max_attempts: int = 8
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    max_response_bytes: int = 64 * 1024
    poll_seconds: float = 1.0


@dataclass
class DeliveryCounts:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    refused: int = 0


class WebhookDispatcher:
    def __init__(self, store: EvaluationStore, policy: OutboundPolicy, lease: MonitorLease,
                 settings: WebhookSettings = WebhookSettings(), post: Post = post_json) -> None:
        self._store = store
        self._policy = policy
        self._lease = lease
        self._settings = settings
        self._post = post
        self._executor = ThreadPoolExecutor(max(settings.workers, 1),
                                            thread_name_prefix="obs-webhook")
        self._inflight: set[Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.counts = DeliveryCounts()

    def wake(self) -> None:
        """Look for due deliveries now (callable from any thread)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    @property
    def claim_seconds(self) -> float:
        # Long enough for one attempt to finish (connect + read timeouts) with margin.
        return self._settings.timeout_seconds * 3 + 5

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            try:
                free = max(self._settings.workers, 1) - len(self._inflight)
                if free > 0 and self._lease.held():
                    claimed = await asyncio.to_thread(self._store.claim_deliveries, free,
                                                      self.claim_seconds)
                    for delivery in claimed:
                        fut = self._executor.submit(self.deliver, delivery)
                        self._inflight.add(fut)
                        fut.add_done_callback(self._done)
                    if len(claimed) == free:
                        continue  # more may be due
            except Exception as exc:  # noqa: BLE001 - the store may be away for a while
                log.warning("webhook outbox: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
            self._wake.clear()

    def _done(self, fut: Future[None]) -> None:
        self._inflight.discard(fut)
        self.wake()

    def deliver(self, d: WebhookDelivery) -> None:
        """One attempt of ``d`` (in a worker thread), its outcome written back."""
        s = self._settings
        body = json.dumps(d.payload).encode()
        headers = {"Idempotency-Key": d.idempotency_key, "X-Modelplane-Event": d.event,
                   "X-Modelplane-Delivery-Attempt": str(d.attempts),
                   "User-Agent": "modelplane-observability"}
        try:
            try:
                resp = self._post(self._policy, d.url, body, headers=headers,
                                  timeout=s.timeout_seconds,
                                  max_response_bytes=s.max_response_bytes)
            except OutboundRefused as exc:
                log.warning("webhook of alert %s refused: %s", d.alert_id, exc.message)
                self.counts.refused += 1
                self._store.finish_delivery(d.id, DeliveryState.REFUSED, exc.message)
                return
            except InvalidArgument as exc:  # not resolvable now, or not a URL
                self._retry(d, exc.message)
                return
            except OutboundFailed as exc:
                self._retry(d, str(exc))
                return
            if 200 <= resp.status < 300:
                self.counts.delivered += 1
                self._store.finish_delivery(d.id, DeliveryState.DELIVERED)
            elif resp.status in RETRY_STATUSES or resp.status >= 500:
                self._retry(d, f"HTTP {resp.status}")
            else:
                why = (f"HTTP {resp.status} redirect to {resp.location!r} not followed"
                       if 300 <= resp.status < 400 else f"HTTP {resp.status}")
                log.warning("webhook of alert %s failed: %s", d.alert_id, why)
                self.counts.failed += 1
                self._store.finish_delivery(d.id, DeliveryState.FAILED, why)
        except Exception as exc:  # noqa: BLE001 - the claim runs out and it is retried
            log.warning("webhook of alert %s: outcome not stored: %s", d.alert_id, exc)

    def _retry(self, d: WebhookDelivery, error: str) -> None:
        s = self._settings
        if d.attempts >= s.max_attempts:
            log.warning("webhook of alert %s failed after %d attempts: %s",
                        d.alert_id, d.attempts, error)
            self.counts.failed += 1
            self._store.finish_delivery(d.id, DeliveryState.FAILED, error)
            return
        self.counts.retried += 1
        delay = backoff_delay(d.attempts - 1, s.backoff_seconds, s.backoff_cap_seconds)
        self._store.finish_delivery(d.id, DeliveryState.PENDING, error, retry_after=delay)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

