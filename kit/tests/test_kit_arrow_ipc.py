"""The kit's bounded Arrow IPC reader: limits checked from the headers, before inflating."""

from __future__ import annotations

import pyarrow as pa
import pytest

from modelplane.kit.arrow_ipc import ArrowBudget, ArrowLimits, read_ipc_stream
from modelplane.kit.errors import InvalidArgument, ResourceExhausted


def _ipc(table: pa.Table, compression: str | None = None, chunk: int = 100) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema,
                           options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return bytes(sink.getvalue())


TABLE = pa.table({
    "x": pa.array(range(1000), pa.int64()),
    "s": pa.array(["ab", None] * 500, pa.string()),
    "d": pa.array(["a", "b"] * 500).dictionary_encode(),
    "l": pa.array([[1, 2]] * 1000, pa.list_(pa.int32())),
})


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_a_stream_within_the_limits_reads_back_unchanged(compression):
    assert read_ipc_stream(_ipc(TABLE, compression)).equals(TABLE)


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_rows_are_counted_batch_by_batch_up_to_the_limit(compression):
    data = _ipc(TABLE, compression)
    assert read_ipc_stream(data, ArrowLimits(max_rows=1000)).num_rows == 1000
    with pytest.raises(ResourceExhausted) as info:
        read_ipc_stream(data, ArrowLimits(max_rows=999), "records.arrow_ipc")
    assert info.value.reason == "ARROW_IPC_TOO_MANY_ROWS"
    assert info.value.metadata == {"setting": "MODELPLANE_MAX_ARROW_ROWS", "limit": "999",
                                   "seen": "1000", "field": "records.arrow_ipc"}


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_compressed_buffers_count_by_their_inflated_size(compression):
    big = pa.table({"z": pa.array([0] * 1_000_000, pa.int64())})  # 8 MB inflated
    data = _ipc(big, compression, chunk=100_000)
    assert len(data) < 1_000_000
    assert read_ipc_stream(data, ArrowLimits(max_bytes=8_000_000)).num_rows == 1_000_000
    with pytest.raises(ResourceExhausted) as info:
        read_ipc_stream(data, ArrowLimits(max_bytes=7_999_999))
    assert info.value.reason == "ARROW_IPC_TOO_LARGE"
    assert info.value.metadata["setting"] == "MODELPLANE_MAX_ARROW_BYTES"


def test_one_budget_spans_the_chunks_of_one_stream():
    budget = ArrowBudget(ArrowLimits(max_rows=1500))
    budget.read(_ipc(TABLE))
    with pytest.raises(ResourceExhausted):
        budget.read(_ipc(TABLE))
    assert budget.rows == 1600  # stopped at the first batch past the limit


@pytest.mark.parametrize("data", [b"", b"not arrow at all" * 8, _ipc(TABLE)[:-40],
                                  _ipc(TABLE, "zstd")[:200]])
def test_what_is_not_an_ipc_stream_is_invalid_argument(data):
    with pytest.raises(InvalidArgument) as info:
        read_ipc_stream(data, field="table.arrow_ipc")
    assert info.value.reason == "INVALID_ARROW_IPC"
    assert info.value.field_violations[0].field == "table.arrow_ipc"
