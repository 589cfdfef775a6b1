"""Ingest pipeline: bounded buffering (backpressure) and failure handling."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.records import Environment, EvaluationRecord, IngestResult
from modelplane.observability.store.embedded import EmbeddedStore
from modelplane.observability.store.encoding import Catalog


def _ingestor(store: EmbeddedStore | None = None, queue_batches: int = 2) -> RecordIngestor:
    return RecordIngestor(store, {}, threading.Lock(), queue_batches)  # type: ignore[arg-type]


async def test_a_slow_store_stops_the_reader_instead_of_buffering() -> None:
    ingestor = _ingestor(queue_batches=2)
    produced = 0
    started = 0
    max_ahead = 0

    async def batches() -> AsyncIterator[Sequence[int]]:
        nonlocal produced, max_ahead
        for _ in range(20):
            max_ahead = max(max_ahead, produced - started)
            produced += 1
            yield [0] * 10

    def slow_write(batch: Sequence[int], first: int, seen: set[str]) -> IngestResult:
        nonlocal started
        started += 1
        time.sleep(0.02)
        return IngestResult(accepted=len(batch))

    result = await ingestor.ingest_stream(batches(), slow_write)
    assert result.accepted == 200
    # Read ahead of the writer by at most the queue plus the batch in hand.
    assert max_ahead <= 2 + 2


async def test_waiting_record_batches_are_written_together_keeping_their_indices() -> None:
    import pyarrow as pa

    from modelplane.observability.ingest import ArrowRecords

    ingestor = _ingestor(queue_batches=4)
    writes: list[tuple[int, int, str]] = []

    async def batches() -> AsyncIterator[Any]:
        for i in range(20):
            yield [i] * 10
        # columnar batches merge only with the same schema
        for cols in ({"a": [1, 2]}, {"a": [3]}, {"b": ["x"]}, {"b": ["y", "z"]}):
            yield ArrowRecords(pa.table(cols))

    def slow_write(batch: Any, first: int, seen: set[str]) -> IngestResult:
        time.sleep(0.02)  # the client outpaces the database
        kind = ",".join(batch.table.schema.names) if isinstance(batch, ArrowRecords) else "list"
        if kind == "list":  # each record is the number of its batch: stream order kept
            assert list(batch) == sorted(batch)
        writes.append((first, len(batch), kind))
        return IngestResult(accepted=len(batch))

    result = await ingestor.ingest_stream(batches(), slow_write, merge=True)
    assert result.accepted == 206
    writes.sort()
    # the writes tile the stream: no index skipped, none twice
    assert [w[0] for w in writes] == [0, *np.cumsum([w[1] for w in writes])[:-1].tolist()]
    lists = [w for w in writes if w[2] == "list"]
    assert len(lists) < 20 and sum(w[1] for w in lists) == 200
    # never a table with two schemas: "a" rows and "b" rows in separate writes
    assert {w[2] for w in writes if w[2] != "list"} == {"a", "b"}
    assert sum(w[1] for w in writes if w[2] == "a") == 3


async def test_a_failing_store_ends_the_stream_with_its_error_and_stops_reading() -> None:
    ingestor = _ingestor(queue_batches=1)
    read = 0

    async def batches() -> AsyncIterator[Sequence[int]]:
        nonlocal read
        for _ in range(1000):
            read += 1
            yield [0]

    def failing(batch: Sequence[int], first: int, seen: set[str]) -> IngestResult:
        raise ConnectionError("database went away")

    with pytest.raises(ConnectionError):
        await asyncio.wait_for(ingestor.ingest_stream(batches(), failing), 10)
    assert read < 20


def test_embedded_store_stays_idempotent_across_restarts(tmp_path: Path) -> None:
    t = datetime(2026, 11, 2, tzinfo=UTC)
    recs = [EvaluationRecord(f"p{i}", "m", "v1", Environment.PRODUCTION, t, {"x": float(i)}, 1)
            for i in range(50)]
    store = EmbeddedStore(tmp_path / "e.duckdb")
    store.open()
    first = _ingestor(store).write_records(recs)
    store.close()
    store = EmbeddedStore(tmp_path / "e.duckdb")
    store.open()
    catalogs: dict[str, Catalog] = store.load_catalogs()
    assert catalogs["m"].features() == {"x": 1}  # NUMERIC, kept in the store
    again = RecordIngestor(store, catalogs, threading.Lock()).write_records(recs[:30] + recs[:5])
    store.close()
    assert (first.accepted, first.duplicates) == (50, 0)
    assert (again.accepted, again.duplicates) == (0, 35)
