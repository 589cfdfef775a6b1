"""Prediction logging: every prediction to observability, asynchronously and losslessly.

``PredictionLogger.log`` only appends to an in-memory queue (the response is
never slowed; the record keeps the numpy arrays the prediction was made from).
A background task sends batches to a :class:`PredictionSink` (observability's
``LogRecords`` stream, one Arrow record batch per flush). When the sink fails,
batches are spooled to JSON-lines files on local disk and re-sent oldest first
once it answers again; memory stays bounded by ``max_queue`` (past it, the
queue is spilled to disk at once). ``close()`` sends or spools whatever is
left, so a graceful shutdown loses nothing; spooled files are delivered after a
restart. Rows the sink reports as rejected (a retry would be rejected again)
are written to ``dead-letter.jsonl`` in the spool directory with the reason,
counted and logged: never silently dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelplane.serving.servable_model import ModelInput

log = logging.getLogger("modelplane.serving.prediction_log")

DEAD_LETTER_FILE = "dead-letter.jsonl"


@dataclass
class PredictionRecord:
    """One prediction as observability stores it (values converted lazily, off the hot path)."""

    prediction_id: str
    deployment: str
    model: str
    model_version: str
    environment: str  # "production", "shadow" or "batch"
    time: float
    inputs: ModelInput | dict[str, list[Any]]
    outputs: np.ndarray | list[Any]
    latency_ms: float
    features: dict[str, Any] = field(default_factory=dict)
    route: str = ""
    trace_id: str = ""
    fallback_reason: str = ""
    parent_prediction_id: str = ""
    span_id: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PredictionRecord:
        """A record read back from the spool (values as plain lists)."""
        return cls(d["prediction_id"], d["deployment"], d["model"], d["model_version"],
                   d["environment"], d["time"], d["inputs"], d["outputs"], d["latency_ms"],
                   d.get("features") or {}, d.get("route", ""), d.get("trace_id", ""),
                   d.get("fallback_reason", ""), d.get("parent_prediction_id", ""),
                   d.get("span_id", ""))

    def to_dict(self) -> dict[str, Any]:
        inputs = self.inputs.as_records() if isinstance(self.inputs, ModelInput) else self.inputs
        outputs = self.outputs.tolist() if isinstance(self.outputs, np.ndarray) else self.outputs
        features = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                    for k, v in self.features.items()}
        return {"prediction_id": self.prediction_id, "deployment": self.deployment,
                "model": self.model, "model_version": self.model_version,
                "environment": self.environment, "time": self.time, "inputs": inputs,
                "features": features, "outputs": outputs, "latency_ms": self.latency_ms,
                "route": self.route, "trace_id": self.trace_id, "span_id": self.span_id,
                "fallback_reason": self.fallback_reason,
                "parent_prediction_id": self.parent_prediction_id}


class PredictionSink(Protocol):
    """Where batches of prediction records go.

    ``send`` raises when the batch was not taken (it is spooled and re-sent) and
    returns the rows that were refused for good (RejectedRow-like: ``record``,
    ``row``, ``prediction_id``, ``field``, ``reason``), which are dead-lettered."""

    async def send(self, records: Sequence[PredictionRecord]) -> Sequence[Any]: ...

    async def close(self) -> None: ...


class DiscardingSink:
    """A sink that accepts and drops everything (logging off service-wide)."""

    async def send(self, records: Sequence[PredictionRecord]) -> Sequence[Any]:
        return ()

    async def close(self) -> None:
        return None


class PredictionLogger:
    def __init__(self, sink: PredictionSink, spool_dir: Path, *, batch_size: int = 500,
                 flush_seconds: float = 0.2, max_queue: int = 20_000,
                 retry_seconds: float = 1.0, send_timeout: float = 5.0,
                 on_rejected: Callable[[str, int], None] | None = None) -> None:
        self.sink = sink
        self.spool_dir = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_queue = max_queue
        self.retry_seconds = retry_seconds
        self.send_timeout = send_timeout
        self._queue: deque[PredictionRecord] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._retry_at = 0.0
        self._seq = itertools.count()
        self.delivered = 0
        self.spooled = 0
        self.rejected = 0
        #: called with (deployment, rows) for rows observability refused (metrics)
        self.on_rejected = on_rejected

    # --- hot path -----------------------------------------------------------------------
    def log(self, record: PredictionRecord) -> None:
        self._queue.append(record)
        if len(self._queue) >= self.max_queue:
            self._spill()
        elif len(self._queue) >= self.batch_size:
            self._wake.set()

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="prediction-logger")

    async def close(self) -> None:
        """Send what is queued (or spool it); nothing is lost."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task  # finishes its current batch; every wait in it is bounded
            self._task = None
        while self._queue:
            batch = self._take()
            if not await self._send(batch):
                self._write_spool([r.to_dict() for r in batch])
                self._write_spool([r.to_dict() for r in self._take(len(self._queue))])
                break
        await self.sink.close()

    @property
    def pending(self) -> int:
        """Records not yet delivered: queued in memory plus spooled on disk."""
        return len(self._queue) + sum(self._count_lines(p) for p in self._spool_files())

    # --- internals ----------------------------------------------------------------------
    def _take(self, n: int | None = None) -> list[PredictionRecord]:
        n = self.batch_size if n is None else n
        return [self._queue.popleft() for _ in range(min(n, len(self._queue)))]

    def _spill(self) -> None:
        records = [r.to_dict() for r in self._take(len(self._queue))]
        self._write_spool(records)

    def _write_spool(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}"
        tmp = self.spool_dir / f"{name}.tmp"
        with open(tmp, "w") as fh:
            for r in records:
                fh.write(json.dumps(r, separators=(",", ":")))
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(self.spool_dir / f"{name}.jsonl")
        self.spooled += len(records)

    @property
    def dead_letter_path(self) -> Path:
        return self.spool_dir / DEAD_LETTER_FILE

    def _spool_files(self) -> list[Path]:
        # Spool files are named <time_ns>-<pid>-<seq>.jsonl; the dead-letter file is not one.
        return sorted(self.spool_dir.glob("[0-9]*.jsonl"))

    @staticmethod
    def _count_lines(path: Path) -> int:
        try:
            with open(path, "rb") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0

    async def _send(self, records: list[PredictionRecord]) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            rejected = await asyncio.wait_for(self.sink.send(records), self.send_timeout)
        except Exception as exc:  # noqa: BLE001 - any failure: keep the records
            log.warning("prediction sink unavailable (%s: %s); spooling to %s",
                        type(exc).__name__, exc, self.spool_dir)
            self._retry_at = time.monotonic() + self.retry_seconds
            return False
        if rejected:
            await asyncio.to_thread(self._dead_letter, list(rejected))
        self.delivered += len(records)
        return True

    def _dead_letter(self, rejected: list[Any]) -> None:
        """Rows refused for good: to the dead-letter file (fsync'd), counted, logged."""
        now = time.time()
        lines = []
        per_deployment: dict[str, int] = {}
        for r in rejected:
            rec = r.record
            deployment = rec.deployment if rec is not None else ""
            per_deployment[deployment] = per_deployment.get(deployment, 0) + 1
            lines.append(json.dumps({
                "rejected_at": now, "prediction_id": r.prediction_id, "field": r.field,
                "reason": r.reason, "row": r.row,
                "record": rec.to_dict() if rec is not None else None,
            }, separators=(",", ":"), default=_jsonable))
        with open(self.dead_letter_path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.rejected += len(rejected)
        if self.on_rejected is not None:
            for deployment, n in per_deployment.items():
                self.on_rejected(deployment, n)
        first = rejected[0]
        log.warning("observability rejected %d prediction row(s), e.g. %s %s: %s; written to %s",
                    len(rejected), first.prediction_id, first.field, first.reason,
                    self.dead_letter_path)

    async def _deliver_spool(self) -> None:
        for path in self._spool_files():
            if time.monotonic() < self._retry_at:
                return
            records = await asyncio.to_thread(_read_jsonl, path)
            for i in range(0, len(records), self.batch_size):
                chunk = records[i:i + self.batch_size]
                if not await self._send([PredictionRecord.from_dict(d) for d in chunk]):
                    rest = records[i:]
                    if i:  # keep only what was not delivered
                        await asyncio.to_thread(_rewrite_jsonl, path, rest)
                    return
            path.unlink(missing_ok=True)

    async def _run(self) -> None:
        while not self._stopping:
            # Partial batches go on the timer only: records that arrive while a batch is
            # being sent wait for the next tick (or a full batch) instead of being sent in
            # a stream of tiny LogRecords calls, whose fixed cost would dominate.
            if len(self._queue) < self.batch_size:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
                except TimeoutError:
                    pass
            self._wake.clear()
            try:
                due = len(self._queue)  # what is queued now; later arrivals wait their turn
                while due > 0 and self._queue:
                    batch = self._take(min(due, self.batch_size))
                    due -= len(batch)
                    if not await self._send(batch):
                        await asyncio.to_thread(self._write_spool, [r.to_dict() for r in batch])
                if time.monotonic() >= self._retry_at and self._spool_files():
                    await self._deliver_spool()
            except Exception:
                log.exception("prediction logger iteration failed")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _rewrite_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    tmp.replace(path)
