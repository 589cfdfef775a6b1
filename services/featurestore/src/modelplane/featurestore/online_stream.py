"""Streaming push to the online store: batches of rows in, written in batches, bad rows
rejected by their index in the whole stream.

The reader screens each incoming batch (rows with a null entity key or event
time are rejected one by one; a batch whose columns do not fit the feature view
is rejected row by row with the column's reason) and hands the good rows to one
writer. Between them sits a bounded queue of ``queue_batches`` write batches of
up to ``batch_rows`` rows each: when the store is slower than the producer, the
reader waits on the queue, stops reading the stream, and transport flow control
(gRPC's window) slows the producer down. Memory is bounded by about
``(queue_batches + 2) * batch_rows`` rows whatever the stream's length.

The writer keeps the newest event per entity key (``push_conformed``): across
write batches too, since each batch is compared with what the store holds
after the previous one was written.

Errors that are not about a row end the stream: an unknown feature view, a
first message without one, a message whose table cannot be read. Rows written
before such an error stay written (as with any stream cut short).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelplane.featurestore.definitions import FeatureViewSpec
from modelplane.featurestore.feature_repository import FeatureRepository
from modelplane.featurestore.row_schema import conform_rows
from modelplane.kit.errors import FieldViolation, InvalidArgument

# How many rejected rows the answer lists (all are counted).
MAX_LISTED_REJECTIONS = 1000


@dataclass(frozen=True)
class RowBatch:
    """One stream message: rows for ``feature_view`` (empty = the previous message's)."""

    feature_view: str
    rows: pa.Table
    also_offline: bool = False


@dataclass(frozen=True)
class RejectedRow:
    index: int        # 0-based position in the whole stream
    field: str        # the offending column, ``rows.<name>``
    reason: str


@dataclass
class StreamPushResult:
    received: int = 0
    written: int = 0
    superseded: int = 0
    rejected_count: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def reject(self, index: int, field_name: str, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED_REJECTIONS:
            self.rejected.append(RejectedRow(index, field_name, reason))


@dataclass
class _WriteBatch:
    view: FeatureViewSpec
    also_offline: bool
    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0


CurrentEventSeconds = Callable[[FeatureViewSpec, dict[str, list[Any]]], list[float]]


class OnlineRowStream:
    def __init__(self, repository: FeatureRepository, current_event_seconds: CurrentEventSeconds,
                 *, batch_rows: int = 5000, queue_batches: int = 2) -> None:
        if batch_rows < 1 or queue_batches < 1:
            raise ValueError("batch_rows and queue_batches must be positive")
        self.repository = repository
        self.current_event_seconds = current_event_seconds
        self.batch_rows = batch_rows
        self.queue_batches = queue_batches

    async def push(self, batches: AsyncIterator[RowBatch]) -> StreamPushResult:
        result = StreamPushResult()
        queue: asyncio.Queue[_WriteBatch | None] = asyncio.Queue(maxsize=self.queue_batches)
        writer = asyncio.create_task(self._write(queue, result))
        try:
            pending: _WriteBatch | None = None
            view_name = ""
            async for batch in batches:
                if writer.done():
                    break  # the writer failed: stop reading, its error is raised below
                view_name = batch.feature_view or view_name
                if not view_name:
                    raise InvalidArgument(
                        "the first message must name its feature_view",
                        reason="FEATURE_VIEW_REQUIRED",
                        field_violations=[FieldViolation("feature_view", "required")])
                view, good = await asyncio.to_thread(self._screen, view_name, batch.rows,
                                                     result)
                if not good.num_rows:
                    continue
                if pending is not None and (pending.view.name != view.name
                                            or pending.also_offline != batch.also_offline):
                    await _put(queue, pending, writer)
                    pending = None
                if pending is None:
                    pending = _WriteBatch(view, batch.also_offline)
                pending.tables.append(good)
                pending.rows += good.num_rows
                if pending.rows >= self.batch_rows:
                    await _put(queue, pending, writer)  # waits while the writer is behind
                    pending = None
            if pending is not None:
                await _put(queue, pending, writer)
            await _put(queue, None, writer)
            await writer
        finally:
            if not writer.done():
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
        return result

    def _screen(self, view_name: str, rows: pa.Table,
                result: StreamPushResult) -> tuple[FeatureViewSpec, pa.Table]:
        """The rows of one message that can be written, conformed; the others rejected."""
        view = self.repository.get_feature_view(view_name)
        columns = self.repository.view_columns(view)
        offset = result.received
        result.received += rows.num_rows
        index = np.arange(offset, offset + rows.num_rows)
        bad = np.zeros(rows.num_rows, dtype=bool)
        for key in [*columns.join_keys, columns.timestamp_field]:
            if key in rows.column_names and rows.column(key).null_count:
                nulls = pc.is_null(rows.column(key)).to_numpy(zero_copy_only=False)
                for i in np.flatnonzero(nulls & ~bad):
                    result.reject(int(index[i]), f"rows.{key}", "must not be null")
                bad |= nulls
        if bad.any():
            rows = rows.filter(pa.array(~bad))
            index = index[~bad]
        try:
            table = conform_rows(rows, columns, field="rows",
                                 subject={"feature_view": view_name})
        except InvalidArgument as exc:
            first = exc.field_violations[0] if exc.field_violations else None
            where = first.field if first else "rows"
            why = "; ".join(f"{v.field}: {v.description}" for v in exc.field_violations) \
                or exc.message
            for i in index:
                result.reject(int(i), where, why)
            return view, rows.slice(0, 0)
        return view, table

    async def _write(self, queue: asyncio.Queue[_WriteBatch | None],
                     result: StreamPushResult) -> None:
        while (item := await queue.get()) is not None:
            table = item.tables[0] if len(item.tables) == 1 else pa.concat_tables(item.tables)
            written = await asyncio.to_thread(self.repository.push_conformed, item.view, table,
                                              item.also_offline, self.current_event_seconds)
            result.written += written
            result.superseded += table.num_rows - written


async def _put(queue: asyncio.Queue[_WriteBatch | None], item: _WriteBatch | None,
               writer: asyncio.Task[None]) -> None:
    """``queue.put`` that does not wait forever on a writer that has failed."""
    put = asyncio.ensure_future(queue.put(item))
    done, _ = await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
    if put not in done:
        put.cancel()
        await writer  # raises the writer's error
