"""Arrow IPC streams read under a decompressed-size and a row limit.

Every service that accepts Arrow IPC bytes from a caller (observability's
``LogRecords`` / ``ImportRecords`` / ``SetBaseline``, the featurestore's pushes)
or from a peer (dataset chunks) reads them here, so one small compressed
payload cannot inflate to gigabytes inside a process.

How the limits hold before anything is inflated: a stream is first walked
message by message with :class:`pyarrow.ipc.MessageReader`, which only slices
the input (no copy, no decompression). For every record batch and dictionary
batch the message's flatbuffer header is read for its row count and its body
buffers; with LZ4/ZSTD body compression each buffer starts with its
uncompressed length (an int64), which is what Arrow allocates when it inflates
the buffer and the most it will write there. The running totals of rows and of
those lengths are checked batch by batch; the first batch past a limit stops
the walk with ``RESOURCE_EXHAUSTED`` (reason ``ARROW_IPC_TOO_LARGE`` or
``ARROW_IPC_TOO_MANY_ROWS``, the setting and the limit in ``ErrorInfo``).
Only a stream that fits is then decoded by pyarrow's own reader.

RESOURCE_EXHAUSTED, not INVALID_ARGUMENT, because the payload is well formed
and only too big for this server's settings (the same code gRPC uses for a
message over its size limit). A stream that is not Arrow IPC is
``INVALID_ARGUMENT`` (reason ``INVALID_ARROW_IPC``).

| variable | default | meaning |
|---|---|---|
| ``MODELPLANE_MAX_ARROW_BYTES`` | ``268435456`` (256 MiB) | decompressed buffer bytes per payload (or per stream of chunks) |
| ``MODELPLANE_MAX_ARROW_ROWS`` | ``5000000`` | rows per payload (or per stream of chunks) |
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelplane.kit.errors import FieldViolation, InvalidArgument, ResourceExhausted

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_MAX_ARROW_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_ARROW_ROWS = 5_000_000
BYTES_SETTING = "MODELPLANE_MAX_ARROW_BYTES"
ROWS_SETTING = "MODELPLANE_MAX_ARROW_ROWS"

# Message.fbs: the MessageHeader union's members that carry a body.
_DICTIONARY_BATCH = 2
_RECORD_BATCH = 3


@dataclass(frozen=True)
class ArrowLimits:
    """The most one Arrow payload (or one stream of chunks) may hold once inflated."""

    max_bytes: int = DEFAULT_MAX_ARROW_BYTES
    max_rows: int = DEFAULT_MAX_ARROW_ROWS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ArrowLimits:
        def number(name: str, default: int) -> int:
            raw = environ.get(name) or ""
            try:
                value = int(raw) if raw.strip() else default
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not an integer") from None
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
            return value

        return cls(number(BYTES_SETTING, DEFAULT_MAX_ARROW_BYTES),
                   number(ROWS_SETTING, DEFAULT_MAX_ARROW_ROWS))


class ArrowBudget:
    """Running totals of rows and inflated bytes over one or more IPC payloads.

    One budget per request payload; one budget shared by the chunks of one
    stream when the chunks together make one table.
    """

    def __init__(self, limits: ArrowLimits | None = None) -> None:
        self.limits = limits or ArrowLimits()
        self.rows = 0
        self.bytes = 0

    def read(self, data: bytes | Any, field: str = "arrow_ipc") -> pa.Table:
        """The table in one IPC stream, after checking it fits what is left of the budget."""
        import pyarrow as pa

        buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
        self.check(buffer, field)
        try:
            return pa.ipc.open_stream(buffer).read_all()
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
                OSError) as exc:
            raise _invalid(field, f"not a valid Arrow IPC stream: {exc}") from None

    def check(self, buffer: pa.Buffer, field: str = "arrow_ipc") -> None:
        """Charge every batch of the stream in ``buffer``; refuse at the first one past a limit."""
        import pyarrow as pa

        try:
            reader = pa.ipc.MessageReader.open_stream(buffer)
            while True:
                try:
                    message = reader.read_next_message()
                except StopIteration:
                    return
                rows, inflated = _batch_size(message)
                self.rows += rows
                self.bytes += inflated
                if self.rows > self.limits.max_rows:
                    raise _exhausted(field, "ARROW_IPC_TOO_MANY_ROWS", ROWS_SETTING,
                                     self.limits.max_rows, self.rows, "rows")
                if self.bytes > self.limits.max_bytes:
                    raise _exhausted(field, "ARROW_IPC_TOO_LARGE", BYTES_SETTING,
                                     self.limits.max_bytes, self.bytes, "bytes once inflated")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError,
                struct.error, IndexError) as exc:
            raise _invalid(field, f"not a valid Arrow IPC stream: {exc}") from None


def read_ipc_stream(data: bytes | Any, limits: ArrowLimits | None = None,
                    field: str = "arrow_ipc") -> pa.Table:
    """The table in one Arrow IPC stream, refused before inflating past ``limits``."""
    return ArrowBudget(limits).read(data, field)


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason="INVALID_ARROW_IPC",
                           field_violations=[FieldViolation(field, description)])


def _exhausted(field: str, reason: str, setting: str, limit: int, seen: int,
               unit: str) -> ResourceExhausted:
    description = (f"the Arrow IPC payload holds more than {limit} {unit} (at least {seen} "
                   f"so far); the limit is {setting}={limit}")
    return ResourceExhausted(f"{field}: {description}", reason=reason,
                             metadata={"setting": setting, "limit": str(limit),
                                       "seen": str(seen), "field": field},
                             field_violations=[FieldViolation(field, description)])


# -- a minimal flatbuffer walk of Message.fbs (only what the limits need) -------------


def _u16(buf: memoryview, at: int) -> int:
    return int(struct.unpack_from("<H", buf, at)[0])


def _u32(buf: memoryview, at: int) -> int:
    return int(struct.unpack_from("<I", buf, at)[0])


def _i64(buf: memoryview, at: int) -> int:
    return int(struct.unpack_from("<q", buf, at)[0])


def _field(buf: memoryview, table: int, index: int) -> int:
    """Absolute position of a table's field ``index``, 0 when absent."""
    vtable = table - int(struct.unpack_from("<i", buf, table)[0])
    vt_size = _u16(buf, vtable)
    slot = 4 + 2 * index
    if slot + 2 > vt_size:
        return 0
    offset = _u16(buf, vtable + slot)
    return table + offset if offset else 0


def _deref(buf: memoryview, at: int) -> int:
    return at + _u32(buf, at)


def _batch_size(message: Any) -> tuple[int, int]:
    """(rows, bytes once inflated) of one IPC message; (0, 0) for those without data."""
    meta = memoryview(message.metadata)
    root = _u32(meta, 0)
    kind_at = _field(meta, root, 1)
    kind = meta[kind_at] if kind_at else 0
    if kind not in (_RECORD_BATCH, _DICTIONARY_BATCH):
        return 0, 0
    header_at = _field(meta, root, 2)
    if not header_at:
        raise IndexError("a batch message without its header")
    batch = _deref(meta, header_at)
    rows_counted = kind == _RECORD_BATCH
    if kind == _DICTIONARY_BATCH:  # DictionaryBatch { id, data: RecordBatch, isDelta }
        data_at = _field(meta, batch, 1)
        if not data_at:
            raise IndexError("a dictionary batch without data")
        batch = _deref(meta, data_at)
    length_at = _field(meta, batch, 0)
    rows = _i64(meta, length_at) if length_at else 0
    if rows < 0:
        raise IndexError(f"a batch of {rows} rows")
    compressed = bool(_field(meta, batch, 3))
    body = message.body
    body_view = memoryview(body) if body is not None else memoryview(b"")
    total = 0
    buffers_at = _field(meta, batch, 2)
    if buffers_at:
        vector = _deref(meta, buffers_at)
        for i in range(_u32(meta, vector)):
            offset = _i64(meta, vector + 4 + 16 * i)
            length = _i64(meta, vector + 4 + 16 * i + 8)
            if offset < 0 or length < 0 or offset + length > len(body_view):
                raise IndexError("a buffer outside the message body")
            if compressed and length >= 8:
                declared = _i64(body_view, offset)
                # -1: this buffer was left uncompressed (it follows the 8-byte prefix)
                size = length - 8 if declared == -1 else declared
                if size < 0:
                    raise IndexError(f"a buffer with uncompressed length {declared}")
                total += size
            else:
                total += length
    return (rows if rows_counted else 0), total


__all__ = ["BYTES_SETTING", "DEFAULT_MAX_ARROW_BYTES", "DEFAULT_MAX_ARROW_ROWS", "ROWS_SETTING",
           "ArrowBudget", "ArrowLimits", "read_ipc_stream"]
