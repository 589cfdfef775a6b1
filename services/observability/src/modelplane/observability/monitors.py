"""Monitors (a signal, a filter, a threshold, a trailing window), evaluated
periodically, and the alerts they raise: stored, streamed to watchers,
optionally POSTed to a webhook.

A monitor's value is the realized metric (performance), the estimated metric
(estimated_performance) or the drift statistic of one column (drift; for the
tests KS and chi-square the value is the p-value). An alert fires when the
value crosses the threshold and resolves at the first evaluation back within it.

Several replicas act as one:

* **One scheduler.** Only the holder of the store's lease (:class:`MonitorLease`,
  a row with an expiry, ¾ of the lease time, renewed every quarter) evaluates due
  monitors; when it dies, another replica takes the lease once it has expired
  (failover within the lease time). A holder that cannot renew stops evaluating
  when its lease would have ended, before anyone else may take it.
* **One alert per crossing.** An alert is keyed by its monitor and its slot (the
  evaluation time rounded down to the monitor's interval), and a monitor has at
  most one FIRING alert: two replicas evaluating at once (``EvaluateMonitor`` may
  run anywhere), or a re-evaluation after failover, store one alert. Resolution is
  a conditional update (FIRING → RESOLVED), so it too happens once.
* **Every watcher sees every alert.** Each change notifies every replica
  (PostgreSQL ``NOTIFY`` with ``<seq>:<alert id>``); :class:`AlertRelay` reads the
  row and fans it out to this replica's ``WatchAlerts`` streams. When its listening
  connection drops it reconnects with backoff and jitter and catches up from the
  store (changes after the last one it saw), so nothing is missed.
* **Webhooks at least once.** The alert's webhook call is written with the alert
  (an outbox row) and sent by :mod:`.webhooks`.

The embedded store (DuckDB) belongs to one process: its lease is local and always
held, and alerts are fanned out in-process.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
import math
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

from modelplane.kit.backoff import Backoff
from modelplane.kit.errors import FieldViolation, InvalidArgument, NotFound
from modelplane.kit.lease import Lease
from modelplane.kit.outbound import OutboundPolicy
from modelplane.observability import metrics as M
from modelplane.observability.baselines import Reference
from modelplane.observability.drift import TESTS, DriftMethod
from modelplane.observability.evaluations import Evaluations
from modelplane.observability.records import (
    PREDICTION,
    ColumnRef,
    ColumnSource,
    EvaluationFilter,
    TimeWindow,
    utcnow,
)
from modelplane.observability.store.base import EvaluationStore, NewDelivery

log = logging.getLogger("modelplane.observability.monitors")


class SignalKind(IntEnum):
    UNSPECIFIED = 0
    PERFORMANCE = 1
    ESTIMATED_PERFORMANCE = 2
    DRIFT = 3


class Comparison(IntEnum):
    UNSPECIFIED = 0
    GREATER = 1
    LESS = 2


#: the source of an alert raised through RaiseAlert
RAISED_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.:/-]{0,127}$")


class AlertState(IntEnum):
    UNSPECIFIED = 0
    FIRING = 1
    RESOLVED = 2


def _bad(field: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])


@dataclass
class Monitor:
    filter: EvaluationFilter
    signal: SignalKind
    comparison: Comparison
    threshold: float
    metric: M.Metric = M.Metric.UNSPECIFIED
    drift_column: ColumnRef | None = None
    drift_method: DriftMethod = DriftMethod.UNSPECIFIED
    drift_reference: Reference | None = None
    id: str = ""
    display_name: str = ""
    window: timedelta = timedelta(hours=1)
    interval: timedelta = timedelta(seconds=60)
    min_records: int = 30
    webhook_url: str = ""
    paused: bool = False
    create_time: datetime | None = None
    update_time: datetime | None = None
    last_evaluation_time: datetime | None = None
    last_value: float = 0.0

    def describe(self) -> str:
        if self.signal is SignalKind.DRIFT:
            what = f"{self.drift_method.name.lower()} drift of {self.drift_column or PREDICTION}"
        else:
            prefix = "estimated " if self.signal is SignalKind.ESTIMATED_PERFORMANCE else ""
            what = f"{prefix}{self.metric.name.lower()}"
        op = ">" if self.comparison is Comparison.GREATER else "<"
        return f"{what} of {self.filter.model} {op} {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        ref = self.drift_reference
        return {
            "id": self.id, "display_name": self.display_name, "filter": self.filter.to_dict(),
            "signal": int(self.signal), "comparison": int(self.comparison),
            "threshold": self.threshold, "metric": int(self.metric),
            "drift_column": ([int(self.drift_column.source), self.drift_column.name]
                             if self.drift_column else None),
            "drift_method": int(self.drift_method),
            "drift_reference": (None if ref is None else
                                {"filter": ref.filter.to_dict() if ref.filter else None,
                                 "baseline": list(ref.baseline) if ref.baseline else None}),
            "window": self.window.total_seconds(), "interval": self.interval.total_seconds(),
            "min_records": self.min_records, "webhook_url": self.webhook_url,
            "paused": self.paused,
            "create_time": _iso(self.create_time), "update_time": _iso(self.update_time),
            "last_evaluation_time": _iso(self.last_evaluation_time),
            "last_value": self.last_value,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Monitor:
        ref = d.get("drift_reference")
        col = d.get("drift_column")
        return cls(
            filter=EvaluationFilter.from_dict(d["filter"]), signal=SignalKind(d["signal"]),
            comparison=Comparison(d["comparison"]), threshold=float(d["threshold"]),
            metric=M.Metric(d["metric"]),
            drift_column=ColumnRef(ColumnSource(col[0]), col[1]) if col else None,
            drift_method=DriftMethod(d["drift_method"]),
            drift_reference=(None if ref is None else Reference(
                EvaluationFilter.from_dict(ref["filter"]) if ref.get("filter") else None,
                tuple(ref["baseline"]) if ref.get("baseline") else None)),  # type: ignore[arg-type]
            id=d["id"], display_name=d.get("display_name", ""),
            window=timedelta(seconds=d["window"]), interval=timedelta(seconds=d["interval"]),
            min_records=int(d["min_records"]), webhook_url=d.get("webhook_url", ""),
            paused=bool(d.get("paused")), create_time=_parse(d.get("create_time")),
            update_time=_parse(d.get("update_time")),
            last_evaluation_time=_parse(d.get("last_evaluation_time")),
            last_value=float(d.get("last_value") or 0.0))


@dataclass
class Alert:
    id: str
    monitor_id: str
    model: str
    state: AlertState
    value: float
    threshold: float
    comparison: Comparison
    window: TimeWindow
    message: str
    create_time: datetime
    resolve_time: datetime | None = None
    #: who raised it when not a monitor (RaiseAlert), e.g. ``rollout/<name>``
    source: str = ""
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "monitor_id": self.monitor_id, "model": self.model,
                "state": int(self.state), "value": self.value, "threshold": self.threshold,
                "comparison": int(self.comparison),
                "window": [_iso(self.window.start), _iso(self.window.end)],
                "message": self.message, "create_time": _iso(self.create_time),
                "resolve_time": _iso(self.resolve_time), "source": self.source,
                "version": self.version}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(d["id"], d["monitor_id"], d["model"], AlertState(d["state"]),
                   float(d["value"]), float(d["threshold"]), Comparison(d["comparison"]),
                   TimeWindow(_parse(d["window"][0]), _parse(d["window"][1])), d["message"],
                   _parse(d["create_time"]) or utcnow(), _parse(d.get("resolve_time")),
                   d.get("source", ""), d.get("version", ""))


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _parse(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


@dataclass
class Evaluation:
    evaluated: bool
    value: float = 0.0
    record_count: int = 0
    alert: Alert | None = None


@dataclass
class _Watcher:
    model: str
    monitor_id: str
    queue: asyncio.Queue[Alert]
    loop: asyncio.AbstractEventLoop


@dataclass
class AlertHub:
    """Fan-out of alerts to WatchAlerts streams (bounded queues; a slow watcher loses
    the oldest). An alert change (id, seq) reaches the watchers once, whether it comes
    from this replica's evaluation, a notification or a catch-up read."""

    watchers: list[_Watcher] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue_size: int = 100
    remember: int = 4096
    published: OrderedDict[tuple[str, int], None] = field(default_factory=OrderedDict)

    def seen(self, alert_id: str, seq: int) -> bool:
        with self.lock:
            return (alert_id, seq) in self.published

    def mark_seen(self, alert_id: str, seq: int) -> None:
        """Remember a change as fanned out without sending it (older than this process)."""
        with self.lock:
            self.published[(alert_id, seq)] = None
            while len(self.published) > self.remember:
                self.published.popitem(last=False)

    def publish_change(self, alert: Alert, seq: int) -> bool:
        """Fan out one stored change; False when it was already fanned out."""
        with self.lock:
            if (alert.id, seq) in self.published:
                return False
            self.published[(alert.id, seq)] = None
            while len(self.published) > self.remember:
                self.published.popitem(last=False)
        self.publish(alert)
        return True

    def subscribe(self, model: str, monitor_id: str) -> _Watcher:
        w = _Watcher(model, monitor_id, asyncio.Queue(self.queue_size), asyncio.get_running_loop())
        with self.lock:
            self.watchers.append(w)
        return w

    def unsubscribe(self, watcher: _Watcher) -> None:
        with self.lock:
            if watcher in self.watchers:
                self.watchers.remove(watcher)

    def publish(self, alert: Alert) -> None:
        with self.lock:
            targets = [w for w in self.watchers
                       if (not w.model or w.model == alert.model)
                       and (not w.monitor_id or w.monitor_id == alert.monitor_id)]
        for w in targets:
            w.loop.call_soon_threadsafe(_offer, w.queue, alert)


def _offer(queue: asyncio.Queue[Alert], alert: Alert) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(alert)


class Monitors:
    def __init__(self, store: EvaluationStore, evaluations: Evaluations, hub: AlertHub,
                 clock: Callable[[], datetime] = utcnow,
                 outbound: OutboundPolicy | None = None,
                 on_delivery: Callable[[], None] | None = None) -> None:
        self._store = store
        self._evaluations = evaluations
        self._hub = hub
        self._clock = clock
        #: None: webhook URLs are not checked at creation (tests of other parts).
        self._outbound = outbound
        self._on_delivery = on_delivery or (lambda: None)
        self._lock = threading.Lock()

    # -- CRUD ---------------------------------------------------------------

    def validate(self, m: Monitor, path: str = "monitor") -> None:
        self._evaluations.validate_filter(m.filter, f"{path}.filter")
        if m.signal is SignalKind.UNSPECIFIED:
            raise _bad(f"{path}.signal", "required (performance, estimated_performance or drift)")
        if m.signal in (SignalKind.PERFORMANCE, SignalKind.ESTIMATED_PERFORMANCE) \
                and m.metric is M.Metric.UNSPECIFIED:
            raise _bad(f"{path}.signal", "metric required")
        if m.signal is SignalKind.DRIFT and m.drift_method is DriftMethod.UNSPECIFIED:
            raise _bad(f"{path}.signal.drift.method", "required")
        if m.comparison is Comparison.UNSPECIFIED:
            raise _bad(f"{path}.comparison", "required (GREATER or LESS)")
        if m.window <= timedelta(0):
            raise _bad(f"{path}.window", "must be positive")
        if m.interval < timedelta(seconds=1):
            raise _bad(f"{path}.interval", "must be at least 1s")
        if m.min_records < 0:
            raise _bad(f"{path}.min_records", "must not be negative")
        if m.webhook_url and not m.webhook_url.startswith(("http://", "https://")):
            raise _bad(f"{path}.webhook_url", "must be an http:// or https:// URL")
        if m.webhook_url and self._outbound is not None:
            self._check_url(m.webhook_url, f"{path}.webhook_url")

    def _check_url(self, url: str, path: str) -> None:
        assert self._outbound is not None
        try:
            self._outbound.check(url, path)
        except InvalidArgument as exc:
            raise _bad(path, exc.message.removeprefix(f"{path}: "),
                       exc.reason) from None

    def create(self, m: Monitor) -> Monitor:
        self.validate(m)
        now = self._clock()
        m = replace(m, id=uuid.uuid4().hex, create_time=now, update_time=now,
                    last_evaluation_time=None, last_value=0.0)
        self._store.put_document("monitor", m.id, m.filter.model, m.to_dict())
        return m

    def get(self, monitor_id: str, path: str = "id") -> Monitor:
        if not monitor_id:
            raise _bad(path, "required")
        doc = self._store.get_document("monitor", monitor_id)
        if doc is None:
            raise NotFound(f"monitor {monitor_id!r} does not exist", reason="MONITOR_NOT_FOUND",
                           metadata={"monitor": monitor_id})
        return Monitor.from_dict(doc)

    def list(self, model: str = "") -> list[Monitor]:
        return [Monitor.from_dict(d) for d in self._store.list_documents("monitor", model or None)]

    def update(self, m: Monitor) -> Monitor:
        old = self.get(m.id, "monitor.id")
        self.validate(m)
        m = replace(m, create_time=old.create_time, update_time=self._clock(),
                    last_evaluation_time=old.last_evaluation_time, last_value=old.last_value)
        self._store.put_document("monitor", m.id, m.filter.model, m.to_dict())
        return m

    def delete(self, monitor_id: str) -> None:
        self.get(monitor_id)
        self._store.delete_document("monitor", monitor_id)

    # -- alerts ---------------------------------------------------------------

    def alerts(self, model: str = "", monitor_id: str = "",
               state: AlertState = AlertState.UNSPECIFIED) -> builtins.list[Alert]:
        """Newest change first."""
        return [Alert.from_dict(d) for d in self._store.list_alerts(
            model or None, monitor_id or None, int(state) or None)]

    # -- evaluation -------------------------------------------------------------

    def _value(self, m: Monitor, f: EvaluationFilter) -> tuple[float | None, int]:
        if m.signal is SignalKind.PERFORMANCE:
            rep = self._evaluations.performance(f, [m.metric])
            return rep.overall.metrics.get(m.metric), rep.overall.labeled_count
        if m.signal is SignalKind.ESTIMATED_PERFORMANCE:
            proxy = self._evaluations.proxy_performance(f, m.drift_reference)
            return proxy.overall.estimated.get(m.metric), proxy.overall.record_count
        col = m.drift_column or PREDICTION
        drift = self._evaluations.drift(f, m.drift_reference, [col], [m.drift_method])
        if not drift.columns:
            return None, drift.current_count
        stat = drift.columns[0].drift.statistic(m.drift_method)
        if stat is None:
            return None, drift.current_count
        return (stat.p_value if m.drift_method in TESTS else stat.value), drift.current_count

    def evaluate(self, monitor_id: str) -> Evaluation:
        with self._lock:
            m = self.get(monitor_id)
            # The records may have come in through other replicas: their columns too.
            self._evaluations.refresh_catalogs()
            now = self._clock()
            window = TimeWindow(now - m.window, now)
            f = replace(m.filter, window=window)
            value, count = self._value(m, f)
            m.last_evaluation_time = now
            if value is None or count < m.min_records:
                self._store.put_document("monitor", m.id, m.filter.model, m.to_dict())
                return Evaluation(False, 0.0, count)
            m.last_value = float(value)
            self._store.put_document("monitor", m.id, m.filter.model, m.to_dict())
            crossed = value > m.threshold if m.comparison is Comparison.GREATER \
                else value < m.threshold
            firing = self._store.firing_alert(m.id)
            alert: Alert | None = None
            seq: int | None = None
            if crossed and firing is None:
                alert = Alert(uuid.uuid4().hex, m.id, m.filter.model, AlertState.FIRING,
                              float(value), m.threshold, m.comparison, window,
                              f"{m.display_name or m.describe()}: value {value:.4g} over "
                              f"{count} records", now)
                seq = self._store.insert_alert(alert.to_dict(), slot_of(now, m.interval),
                                               self._delivery(m, alert, "firing"))
            elif not crossed and firing is not None:
                alert = replace(Alert.from_dict(firing), state=AlertState.RESOLVED,
                                resolve_time=now, value=float(value))
                seq = self._store.resolve_alert(alert.to_dict(),
                                                self._delivery(m, alert, "resolved"))
            if seq is None:  # nothing changed, or another evaluation stored it first
                return Evaluation(True, float(value), count)
            assert alert is not None
            self._hub.publish_change(alert, seq)
            if m.webhook_url:
                self._on_delivery()
            return Evaluation(True, float(value), count, alert)

    @staticmethod
    def _delivery(m: Monitor, alert: Alert, event: str) -> NewDelivery | None:
        if not m.webhook_url:
            return None
        # The receiver's deduplication key: the same for every attempt of one event.
        key = alert.id if event == "firing" else f"{alert.id}-{event}"
        return NewDelivery(m.webhook_url, event, key, alert.to_dict())

    def due(self) -> builtins.list[Monitor]:
        now = self._clock()
        return [m for m in self.list() if not m.paused and (
            m.last_evaluation_time is None or m.last_evaluation_time + m.interval <= now)]

    async def run(self, tick_seconds: float, lease: MonitorLease) -> None:
        """Evaluate due monitors while this replica holds ``lease`` (cancel to stop)."""
        while True:
            try:
                if lease.held():
                    for m in await asyncio.to_thread(self.due):
                        if not lease.held():
                            break
                        try:
                            await asyncio.to_thread(self.evaluate, m.id)
                        except Exception as exc:  # noqa: BLE001 - one bad monitor must not stop others
                            log.warning("monitor %s could not be evaluated: %s", m.id, exc)
            except Exception as exc:  # noqa: BLE001
                log.warning("monitor scheduler: %s", exc)
            await lease.wait_gained(tick_seconds)

    # -- alerts raised by other services (issue #17) ----------------------------

    def raise_alert(self, source: str, model: str, version: str, message: str,
                    idempotency_key: str) -> Alert:
        """A FIRING alert from ``source`` (not a monitor), raised once per
        (source, idempotency_key): a retry returns the alert stored first."""
        out: list[FieldViolation] = []
        if not RAISED_SOURCE.match(source):
            out.append(FieldViolation("source", "must match [a-z0-9][a-z0-9_.:/-]{0,127}"))
        if not model:
            out.append(FieldViolation("model", "is required"))
        if not message.strip() or len(message) > 4000:
            out.append(FieldViolation("message", "is required, at most 4000 characters"))
        if not idempotency_key or len(idempotency_key) > 256:
            out.append(FieldViolation("idempotency_key", "is required, at most 256 characters"))
        if out:
            raise InvalidArgument("invalid alert: " + "; ".join(
                f"{v.field}: {v.description}" for v in out), reason="INVALID_ALERT",
                field_violations=out)
        alert_id = "raised-" + hashlib.sha256(
            f"{source}\0{idempotency_key}".encode()).hexdigest()[:32]
        now = self._clock()
        alert = Alert(alert_id, "", model, AlertState.FIRING, 0.0, 0.0, Comparison.UNSPECIFIED,
                      TimeWindow(None, None), message, now, source=source, version=version)
        seq = self._store.insert_raised_alert(alert.to_dict(), now)
        if seq is None:  # raised before (a retry): the first one stands
            found = self._store.alert_by_id(alert_id)
            if found is not None:
                return Alert.from_dict(found[1])
            return alert
        self._hub.publish_change(alert, seq)
        log.warning("alert raised by %s about %s: %s", source, model, message)
        return alert


def slot_of(t: datetime, interval: timedelta) -> datetime:
    """``t`` rounded down to a multiple of ``interval`` since the epoch: the key that
    makes two evaluations of one monitor in one interval raise one alert at most."""
    step = max(interval.total_seconds(), 1.0)
    return datetime.fromtimestamp(math.floor(t.timestamp() / step) * step, UTC)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """The kit's backoff rule (``modelplane.kit.backoff``) after ``attempt`` + 1 failures:
    a random delay in [d/2, d] with d = min(cap, base * 2**attempt)."""
    return Backoff(base, cap).delay(attempt + 1)


class MonitorLease(Lease):
    """The scheduler's lease in the store (the kit's :class:`Lease`, named
    ``monitor-scheduler``): taken when free or expired, released on a clean stop.
    It also decides which replica sends webhooks."""

    NAME = "monitor-scheduler"

    def __init__(self, store: EvaluationStore, ttl_seconds: float,
                 holder: str | None = None) -> None:
        super().__init__(store, self.NAME, ttl_seconds, holder)


class AlertRelay:
    """Fans out alert changes made by any replica to this replica's watchers."""

    LOOKBACK = 64  # seqs re-read on catch-up: a change committed after a later one

    def __init__(self, store: EvaluationStore, hub: AlertHub,
                 backoff_base: float = 0.2, backoff_cap: float = 30.0) -> None:
        self._store = store
        self._hub = hub
        self._base = backoff_base
        self._cap = backoff_cap
        self.last_seq = 0
        self.connected = False
        self.reconnects = 0

    def prime(self) -> None:
        """Start from the store's latest change; the few before it (re-read by every
        catch-up) count as already fanned out: they happened before this process."""
        self.last_seq = self._store.last_alert_seq()
        for seq, doc in self._store.alerts_since(max(self.last_seq - self.LOOKBACK, 0)):
            self._hub.mark_seen(doc["id"], seq)

    async def run(self) -> None:
        if self._store.listen_alerts() is None:
            self.connected = True  # one process: evaluations publish directly
            return
        failures = 0
        primed = False
        while True:
            listen = self._store.listen_alerts()
            assert listen is not None
            try:
                if not primed:
                    await asyncio.to_thread(self.prime)
                    primed = True
                async with listen as payloads:
                    self.connected = True
                    failures = 0
                    # Listening first, then reading: a change committed in between is
                    # both read here and notified; the hub passes it on once.
                    await asyncio.to_thread(self.catch_up)
                    async for payload in payloads:
                        await asyncio.to_thread(self.on_notification, payload)
                raise ConnectionError("the notification stream ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect whatever broke
                self.connected = False
                self.reconnects += 1
                delay = backoff_delay(failures, self._base, self._cap)
                failures += 1
                log.warning("alert notifications lost (%s); reconnecting in %.2fs", exc, delay)
                await asyncio.sleep(delay)

    def catch_up(self) -> int:
        """Publish the changes after the last seen one; how many were new."""
        published = 0
        after = max(self.last_seq - self.LOOKBACK, 0)
        while True:
            rows = self._store.alerts_since(after)
            for seq, doc in rows:
                published += self._hub.publish_change(Alert.from_dict(doc), seq)
                self.last_seq = max(self.last_seq, seq)
            if len(rows) < 500:
                return published
            after = rows[-1][0]

    def on_notification(self, payload: str) -> None:
        seq_text, _, alert_id = payload.partition(":")
        try:
            seq = int(seq_text)
        except ValueError:
            log.warning("alert notification %r is not <seq>:<id>", payload)
            return
        if not self._hub.seen(alert_id, seq):
            row = self._store.alert_by_id(alert_id)
            if row is not None:
                self._hub.publish_change(Alert.from_dict(row[1]), row[0])
        self.last_seq = max(self.last_seq, seq)

