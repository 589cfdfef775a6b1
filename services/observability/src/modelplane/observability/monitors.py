"""Monitors (a signal, a filter, a threshold, a trailing window), evaluated
periodically, and the alerts they raise: stored, streamed to watchers,
optionally POSTed to a webhook.

A monitor's value is the realized metric (performance), the estimated metric
(estimated_performance) or the drift statistic of one column (drift; for the
tests KS and chi-square the value is the p-value). An alert fires when the
value crosses the threshold and resolves at the first evaluation back within it.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from modelplane.kit.errors import FieldViolation, InvalidArgument, NotFound
from modelplane.observability import metrics as M
from modelplane.observability.drift import TESTS, DriftMethod
from modelplane.observability.evaluations import Evaluations, Reference
from modelplane.observability.records import (
    PREDICTION,
    ColumnRef,
    ColumnSource,
    EvaluationFilter,
    TimeWindow,
    utcnow,
)
from modelplane.observability.store.base import EvaluationStore

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

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "monitor_id": self.monitor_id, "model": self.model,
                "state": int(self.state), "value": self.value, "threshold": self.threshold,
                "comparison": int(self.comparison),
                "window": [_iso(self.window.start), _iso(self.window.end)],
                "message": self.message, "create_time": _iso(self.create_time),
                "resolve_time": _iso(self.resolve_time)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(d["id"], d["monitor_id"], d["model"], AlertState(d["state"]),
                   float(d["value"]), float(d["threshold"]), Comparison(d["comparison"]),
                   TimeWindow(_parse(d["window"][0]), _parse(d["window"][1])), d["message"],
                   _parse(d["create_time"]) or utcnow(), _parse(d.get("resolve_time")))


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
    """Fan-out of alerts to WatchAlerts streams (bounded queues; a slow watcher loses the oldest)."""

    watchers: list[_Watcher] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue_size: int = 100

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
                 webhook: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self._store = store
        self._evaluations = evaluations
        self._hub = hub
        self._clock = clock
        self._webhook = webhook or post_webhook
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
        out = [Alert.from_dict(d) for d in self._store.list_documents("alert", model or None)]
        out = [a for a in out if (not monitor_id or a.monitor_id == monitor_id)
               and (state is AlertState.UNSPECIFIED or a.state is state)]
        return out[::-1]

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
            firing = [a for a in self.alerts(monitor_id=m.id, state=AlertState.FIRING)]
            alert: Alert | None = None
            if crossed and not firing:
                alert = Alert(uuid.uuid4().hex, m.id, m.filter.model, AlertState.FIRING,
                              float(value), m.threshold, m.comparison, window,
                              f"{m.display_name or m.describe()}: value {value:.4g} over "
                              f"{count} records", now)
                self._store.put_document("alert", alert.id, alert.model, alert.to_dict())
            elif not crossed and firing:
                alert = replace(firing[0], state=AlertState.RESOLVED, resolve_time=now,
                                value=float(value))
                self._store.put_document("alert", alert.id, alert.model, alert.to_dict())
            if alert is not None:
                self._hub.publish(alert)
                if m.webhook_url:
                    threading.Thread(target=self._send, args=(m.webhook_url, alert),
                                     daemon=True).start()
            return Evaluation(True, float(value), count, alert)

    def _send(self, url: str, alert: Alert) -> None:
        try:
            self._webhook(url, alert.to_dict())
        except Exception as exc:  # noqa: BLE001 - a webhook failing must not stop monitoring
            log.warning("webhook for alert %s failed: %s", alert.id, exc)

    def due(self) -> builtins.list[Monitor]:
        now = self._clock()
        return [m for m in self.list() if not m.paused and (
            m.last_evaluation_time is None or m.last_evaluation_time + m.interval <= now)]

    async def run(self, tick_seconds: float) -> None:
        """Evaluate due monitors forever (cancel the task to stop)."""
        while True:
            try:
                for m in await asyncio.to_thread(self.due):
                    try:
                        await asyncio.to_thread(self.evaluate, m.id)
                    except Exception as exc:  # noqa: BLE001 - one bad monitor must not stop others
                        log.warning("monitor %s could not be evaluated: %s", m.id, exc)
            except Exception as exc:  # noqa: BLE001
                log.warning("monitor scheduler: %s", exc)
            await asyncio.sleep(tick_seconds)


def post_webhook(url: str, payload: dict[str, Any]) -> None:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()
