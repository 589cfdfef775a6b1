"""Ingest: batches of records and actuals into the store, with backpressure.

A stream is read by one coroutine and written by ``writers`` others (each
batch in its own transaction, so the database works on two at once), joined
by a bounded queue of batches: when the database is slower than the client, the
reader stops reading, gRPC flow control stops the client, and memory stays
bounded (``queue_batches`` batches in the queue; a writer takes the record
batches waiting there into one write, up to ``WRITE_CHUNK`` rows, so a fast
client's small messages become fewer, larger transactions). A malformed
record is rejected with its index in the stream; the rest of the stream is
kept. A batch is a
list of records or a columnar Arrow table (:mod:`.columnar`); both forms
share the indices, the idempotency and the catalogs.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from modelplane.kit.arrow_ipc import ArrowLimits, read_ipc_stream
from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.kit.locations import StoragePolicy, read_parquet
from modelplane.observability.columnar import prepare_columnar
from modelplane.observability.records import (
    Actual,
    Environment,
    EvaluationRecord,
    IngestResult,
    Rejection,
    Scalar,
    utcnow,
)
from modelplane.observability.store.base import EvaluationStore
from modelplane.observability.store.encoding import Catalog, RecordEncoder, encode_actuals

RecordItem = EvaluationRecord | Rejection
#: A span name per traced record (or per distinct trace/span pair of a batch).
INGEST_SPAN = "observability.ingest_record"
ActualItem = Actual | Rejection
#: Rows per store write when an incoming batch is larger.
WRITE_CHUNK = 20_000


def _bad(field: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])


class RecordIngestor:
    def __init__(self, store: EvaluationStore, catalogs: dict[str, Catalog],
                 catalog_lock: threading.Lock, queue_batches: int = 4,
                 clock: Callable[[], datetime] = utcnow, writers: int = 2) -> None:
        self._store = store
        self._catalogs = catalogs
        self._catalog_lock = catalog_lock
        self._queue_batches = queue_batches
        self._clock = clock
        self._writers = max(writers, 1)

    # -- blocking writes (run in a thread) ----------------------------------

    def write_batch(self, batch: Sequence[RecordItem] | ArrowRecords, first_index: int = 0,
                    seen: set[str] | None = None) -> IngestResult:
        """One LogRecords message, in either form."""
        if isinstance(batch, ArrowRecords):
            return self.write_columnar(batch.table, first_index)
        return self.write_records(batch, first_index, seen)

    def write_records(self, records: Sequence[RecordItem], first_index: int = 0,
                      seen: set[str] | None = None) -> IngestResult:
        result = IngestResult()
        for start in range(0, max(len(records), 1), WRITE_CHUNK):
            chunk = records[start:start + WRITE_CHUNK]
            encoder = RecordEncoder(self._catalogs)
            rows, new_columns, rejected, dupes = encoder.encode(chunk, first_index + start, seen)
            new_columns = {m: c for m, c in new_columns.items() if c}
            began = time.time_ns()
            stored = self._store.write_records(rows, new_columns)
            self._update_catalogs(new_columns)
            if encoder.spans:
                trace_ingest(encoder.spans, began, time.time_ns(), "records")
            result.add(IngestResult(stored, dupes + len(rows) - stored, 0, rejected))
        return result

    def write_columnar(self, table: Any, first_index: int = 0) -> IngestResult:
        """A columnar batch (an Arrow table of ``LogRecordsRequest.arrow_ipc``)."""
        result = IngestResult()
        for start in range(0, max(table.num_rows, 1), WRITE_CHUNK):
            chunk = table.slice(start, WRITE_CHUNK)
            batch = prepare_columnar(chunk, first_index + start, self._catalogs)
            began = time.time_ns()
            stored = self._store.write_columnar(batch)
            self._update_catalogs(batch.new_columns)
            if batch.spans:
                trace_ingest(batch.spans, began, time.time_ns(), "arrow_ipc")
            valid = batch.table.num_rows
            result.add(IngestResult(stored, batch.in_batch_duplicates + valid - stored, 0,
                                    batch.rejected))
        return result

    def _update_catalogs(self, new_columns: dict[str, dict[tuple[int, str], Any]]) -> None:
        with self._catalog_lock:
            for model, cols in new_columns.items():
                self._catalogs.setdefault(model, Catalog()).kinds.update(cols)

    def write_actuals(self, actuals: Sequence[ActualItem], first_index: int = 0) -> IngestResult:
        rows, rejected, dupes = encode_actuals(actuals, first_index, self._clock())
        changed, same, unmatched = self._store.write_actuals(rows)
        return IngestResult(changed, same + dupes, unmatched, rejected)

    # -- streams --------------------------------------------------------------

    async def ingest_stream(self, batches: AsyncIterator[Sequence[Any]],
                            write: Callable[[Sequence[Any], int, set[str]], IngestResult],
                            merge: bool = False) -> IngestResult:
        """``merge``: write batches that wait in the queue together (records only: an
        actual sent twice counts differently within one write than across two)."""
        queue: asyncio.Queue[tuple[Sequence[Any], int] | None] = asyncio.Queue(
            maxsize=self._queue_batches)
        total = IngestResult()
        seen: set[str] = set()

        failure: list[BaseException] = []

        async def writer() -> None:
            done = False
            while not done:
                item = await queue.get()
                if item is None:
                    return
                batch, first = item
                starts = [first]  # where each message of the batch begins in the stream
                # Batches already waiting behind this one go in the same write when
                # they can (consecutive in the stream, so the indices still hold):
                # fewer, larger transactions when the client outpaces the database.
                while merge and len(batch) < WRITE_CHUNK and not queue.empty():
                    nxt = queue.get_nowait()
                    if nxt is None:
                        done = True  # this writer's end; write what it holds first
                        break
                    merged = _merge(batch, nxt[0])
                    if merged is None:
                        await self._write_one(write, batch, starts, seen, total, failure)
                        batch, starts = nxt[0], [nxt[1]]
                    else:
                        batch = merged
                        starts.append(nxt[1])
                await self._write_one(write, batch, starts, seen, total, failure)

        tasks = [asyncio.create_task(writer()) for _ in range(self._writers)]
        index = 0
        try:
            async for batch in batches:
                if failure:
                    break
                await queue.put((batch, index))
                index += len(batch)
            for _ in tasks:
                await queue.put(None)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        await asyncio.gather(*tasks)
        if failure:
            raise failure[0]
        return total

    @staticmethod
    async def _write_one(write: Callable[[Sequence[Any], int, set[str]], IngestResult],
                         batch: Sequence[Any], starts: list[int], seen: set[str],
                         total: IngestResult, failure: list[BaseException]) -> None:
        if failure:
            return  # drain, so the reader never blocks on a dead writer
        try:
            result = await asyncio.to_thread(write, batch, starts[0], seen)
        except Exception as exc:  # noqa: BLE001 - re-raised by ingest_stream, after the stream
            failure.append(exc)
            return
        result.rejected = _in_message(result.rejected, starts)
        total.add(result)

    async def log_records(self, batches: AsyncIterator[Sequence[RecordItem] | ArrowRecords]
                          ) -> IngestResult:
        return await self.ingest_stream(batches, self.write_batch,  # type: ignore[arg-type]
                                        merge=True)

    async def log_actuals(self, batches: AsyncIterator[Sequence[ActualItem]]) -> IngestResult:
        return await self.ingest_stream(batches, lambda b, i, _s: self.write_actuals(b, i))

    # -- bulk import ----------------------------------------------------------

    def import_table(self, model: str, version: str, environment: Environment,
                     table: Any, columns: ImportColumns) -> tuple[IngestResult, int]:
        """Records (and actuals) from an Arrow table; returns (records result, actuals stored)."""
        if not model:
            raise _bad("model", "required")
        if not version:
            raise _bad("version", "required")
        if environment is Environment.UNSPECIFIED:
            raise _bad("environment", "required")
        names = set(table.column_names)
        for attr, col in (("prediction_id", columns.prediction_id),
                          ("prediction_time", columns.prediction_time)):
            if col not in names:
                # (not the columns it does have: the table may be a server file)
                raise _bad(f"columns.{attr}", f"the table has no column {col!r}",
                           "COLUMN_NOT_FOUND")
        has_prediction = columns.prediction in names
        has_actual = columns.actual in names
        score_cols = [n for n in names if n.startswith(columns.score_prefix)]
        tag_cols = [n for n in names if n.startswith(columns.tag_prefix)]
        reserved = {columns.prediction_id, columns.prediction_time, columns.prediction,
                    columns.actual, *score_cols, *tag_cols}
        features = list(columns.features) or [n for n in table.column_names if n not in reserved]
        for i, f in enumerate(features):
            if f not in names:
                raise _bad(f"columns.features[{i}]", f"the table has no column {f!r}",
                           "COLUMN_NOT_FOUND")
        records: list[RecordItem] = []
        actuals: list[ActualItem] = []
        for i, row in enumerate(table.to_pylist()):
            pid = row[columns.prediction_id]
            ts = _as_time(row[columns.prediction_time])
            if pid is None or ts is None:
                records.append(Rejection(i, str(pid or ""), "prediction_id" if pid is None
                                         else "prediction_time", "required"))
                continue
            pid = str(pid)
            records.append(EvaluationRecord(
                prediction_id=pid, model=model, version=version, environment=environment,
                prediction_time=ts, features={f: _scalar(row[f]) for f in features},
                prediction=_scalar(row[columns.prediction]) if has_prediction else None,
                scores={n[len(columns.score_prefix):]: float(row[n]) for n in score_cols
                        if row[n] is not None},
                tags={n[len(columns.tag_prefix):]: str(row[n]) for n in tag_cols
                      if row[n] is not None}))
            if has_actual and row[columns.actual] is not None:
                actuals.append(Actual(pid, _scalar(row[columns.actual])))
        result = self.write_records(records)
        stored = self.write_actuals(actuals).accepted if actuals else 0
        return result, stored


#: a rejection's field path: ``records[3].prediction_time``, ``arrow_ipc[7].score.1``
_FIELD_PATH = re.compile(r"(records|arrow_ipc)\[(\d+)\](.*)", re.DOTALL)


def _in_message(rejected: list[Rejection], starts: list[int]) -> list[Rejection]:
    """Field paths counted from the start of the caller's message, as the contract
    says, not from that of a merged batch or of a write chunk: the row number is
    the rejection's stream index minus where its message began."""
    out = []
    for r in rejected:
        m = _FIELD_PATH.fullmatch(r.field)
        if m is not None:
            start = starts[bisect.bisect_right(starts, r.index) - 1]
            r = Rejection(r.index, r.prediction_id, f"{m[1]}[{r.index - start}]{m[3]}",
                          r.reason)
        out.append(r)
    return out


def _merge(a: Any, b: Any) -> Any:
    """Two consecutive batches as one, or None when they do not merge: a list of
    records with a list, a columnar table with one of the same schema."""
    if isinstance(a, ArrowRecords):
        if isinstance(b, ArrowRecords) and a.table.schema.equals(b.table.schema):
            import pyarrow as pa

            return ArrowRecords(pa.concat_tables([a.table, b.table]))
        return None
    if isinstance(b, ArrowRecords) or not isinstance(a, list) or not isinstance(b, list):
        return None
    return a + b


class ArrowRecords:
    """A columnar LogRecords batch in the queue (its length is its row count)."""

    __slots__ = ("table",)

    def __init__(self, table: Any) -> None:
        self.table = table

    def __len__(self) -> int:
        return int(self.table.num_rows)


def trace_ingest(spans: Sequence[tuple[str, str, str, int]], start_ns: int, end_ns: int,
                 form: str) -> None:
    """One child span per distinct (trace id, span id) of a written batch: the
    prediction's trace shows the evaluation store taking its record in."""
    from opentelemetry import trace
    from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags

    tracer = trace.get_tracer("modelplane.observability.ingest")
    rpc = trace.get_current_span().get_span_context()
    links = [Link(rpc)] if rpc.is_valid else []
    for trace_id, span_id, model, count in spans:
        if len(trace_id) != 32 or len(span_id) != 16:
            continue
        try:
            parent = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED))
        except ValueError:
            continue  # not hex: not a trace we can join
        if not parent.is_valid:
            continue
        span = tracer.start_span(
            INGEST_SPAN, context=trace.set_span_in_context(NonRecordingSpan(parent)),
            kind=trace.SpanKind.INTERNAL, links=links, start_time=start_ns,
            attributes={"modelplane.model": model, "modelplane.observability.records": count,
                        "modelplane.observability.form": form})
        span.end(end_time=end_ns)


class ImportColumns:
    def __init__(self, prediction_id: str = "", prediction_time: str = "", prediction: str = "",
                 actual: str = "", score_prefix: str = "", tag_prefix: str = "",
                 features: Sequence[str] = ()) -> None:
        self.prediction_id = prediction_id or "prediction_id"
        self.prediction_time = prediction_time or "prediction_time"
        self.prediction = prediction or "prediction"
        self.actual = actual or "actual"
        self.score_prefix = score_prefix or "score_"
        self.tag_prefix = tag_prefix or "tag_"
        self.features = tuple(features)


def _scalar(value: Any) -> Scalar:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


def _as_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=UTC)
    return None


def read_table(parquet_uri: str | None, arrow_ipc: bytes | None, path: str,
               storage: StoragePolicy, arrow_limits: ArrowLimits | None = None) -> Any:
    """An Arrow table from Arrow IPC stream bytes (bounded: the kit's Arrow limits are
    checked before anything is inflated), or from a parquet file the storage policy
    lets callers name (under a storage root, or in an allowed bucket)."""

    if arrow_ipc:
        return read_ipc_stream(arrow_ipc, arrow_limits, f"{path}.arrow_ipc")
    if not parquet_uri:
        raise _bad(path, "one of parquet_uri or arrow_ipc is required")
    field = f"{path}.parquet_uri"
    return read_parquet(storage.readable(parquet_uri, field), field)
