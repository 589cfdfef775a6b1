"""Online lookup results as protobuf wire bytes.

Values come out of the online stores as Feast's serialized ``Value``
messages. Feast's own response embeds them as they are; ours
(``modelplane.api.v1.Value``) numbers its fields differently, so each value
is re-tagged (a one-byte change for every scalar type) instead of being
parsed into Python and serialized again.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from modelplane.featurestore.online_lookup import (
    NOT_FOUND,
    NULL_VALUE,
    OUTSIDE_MAX_AGE,
    PRESENT,
    LookupResult,
)

# Our FeatureStatus numbers for Feast's.
OUR_STATUS = {PRESENT: 1, NOT_FOUND: 2, OUTSIDE_MAX_AGE: 3, NULL_VALUE: 4, 0: 0}
_OUR_STATUS_BYTE = bytes(OUR_STATUS.get(i, 0) for i in range(256))

_NULL = b"\x30\x01"  # modelplane.api.v1.Value{null_value: true}


def varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return bytes((tag,)) + (bytes((n,)) if n < 0x80 else varint(n)) + payload


def _timestamp(seconds: float) -> bytes:
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    out = b"\x08" + varint(whole) if whole else b""
    if nanos:
        out += b"\x10" + varint(nanos)
    return out


def _float_to_double(rest: bytes) -> bytes:
    return b"\x09" + struct.pack("<d", struct.unpack("<f", rest)[0])


def _unix_ts(rest: bytes) -> bytes:
    inner = b"\x08" + rest
    return b"\x3a" + bytes((len(inner),)) + inner


# Feast Value first tag byte -> our Value bytes (scalar types).
_RETAG = {
    0x0A: lambda rest: b"\x2a" + rest,   # bytes_val -> bytes_value
    0x12: lambda rest: b"\x1a" + rest,   # string_val -> string_value
    0x18: lambda rest: b"\x10" + rest,   # int32_val -> int64_value (same varint)
    0x20: lambda rest: b"\x10" + rest,   # int64_val -> int64_value
    0x29: lambda rest: b"\x09" + rest,   # double_val -> double_value
    0x35: _float_to_double,              # float_val -> double_value
    0x38: lambda rest: b"\x20" + rest,   # bool_val -> bool_value
    0x40: _unix_ts,                      # unix_timestamp_val -> timestamp_value
}


def feast_value_to_ours(raw: bytes | None) -> bytes:
    """Feast ``Value`` bytes -> ``modelplane.api.v1.Value`` bytes (lists and maps -> null)."""
    if not raw:
        return _NULL
    convert = _RETAG.get(raw[0])
    return convert(raw[1:]) if convert is not None else _NULL


def python_value_to_ours(value: object) -> bytes:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return b"\x20\x01" if value else b"\x20\x00"
    if isinstance(value, int):
        return b"\x10" + varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x09" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _ld(0x2A, value)
    return _ld(0x1A, str(value).encode())


def python_value_to_feast(value: object) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x38\x01" if value else b"\x38\x00"
    if isinstance(value, int):
        return b"\x20" + varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x29" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _ld(0x0A, value)
    return _ld(0x12, str(value).encode())


def _timestamps(seconds: Sequence[float], tag: int) -> bytes:
    out = []
    cache: dict[float, bytes] = {}
    for s in seconds:
        enc = cache.get(s)
        if enc is None:
            enc = cache[s] = _ld(tag, _timestamp(s) if s else b"")
        out.append(enc)
    return b"".join(out)


# Feast tag -> our tag, for scalar types whose payload is carried over unchanged.
_SAME_PAYLOAD = {0x0A: 0x2A, 0x12: 0x1A, 0x18: 0x10, 0x20: 0x10, 0x29: 0x09, 0x38: 0x20}


def _uniform(values: Sequence[bytes | None]) -> int:
    """The common length of ``values`` when all are present, non-empty and equally long, else 0."""
    if not values or None in values:
        return 0
    lengths = set(map(len, values))  # type: ignore[arg-type]
    if len(lengths) != 1:
        return 0
    first = lengths.pop()
    return first if 0 < first <= 127 else 0


def _our_values(values: Sequence[bytes | None]) -> bytes:
    """Repeated ``values`` field (tag 2) of an OnlineFeatureColumn."""
    length = _uniform(values)
    if length and len(values) > 4:
        first_tag = values[0][0]  # type: ignore[index]
        ours = _SAME_PAYLOAD.get(first_tag)
        if ours is not None:
            import numpy as np

            joined = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), length)  # type: ignore[arg-type]
            if (joined[:, 0] == first_tag).all():
                out = np.empty((len(values), length + 2), dtype=np.uint8)
                out[:, 0] = 0x12
                out[:, 1] = length
                out[:, 2] = ours
                out[:, 3:] = joined[:, 1:]
                return out.tobytes()
    return b"".join(_ld(0x12, feast_value_to_ours(v or b"")) for v in values)


def _feast_values(values: Sequence[bytes | None]) -> bytes:
    """Repeated ``values`` field (tag 1) of a Feast FeatureVector: the stored bytes as they are."""
    length = _uniform(values)
    if length:
        prefix = bytes((0x0A, length))
        return prefix + prefix.join(values)  # type: ignore[arg-type]
    return b"".join(_ld(0x0A, v or b"") for v in values)


_FIELD_CACHE: dict[tuple[int, bytes], bytes] = {}


def _cached_ld(tag: int, payload: bytes) -> bytes:
    """``_ld`` for the small payloads that repeat across requests (names, status runs)."""
    key = (tag, payload)
    found = _FIELD_CACHE.get(key)
    if found is None:
        if len(_FIELD_CACHE) > 50_000:
            _FIELD_CACHE.clear()
        found = _FIELD_CACHE[key] = _ld(tag, payload)
    return found


def _column(body_parts: Sequence[bytes]) -> bytes:
    body = b"".join(body_parts)
    n = len(body)
    return b"\x0a" + (bytes((n,)) if n < 0x80 else varint(n)) + body


_NAME_FIELDS: dict[tuple[str, ...], list[bytes]] = {}
# Our status field (tag 3, one status) for each Feast status.
_ONE_STATUS = {feast: _ld(0x1A, bytes((ours,))) for feast, ours in OUR_STATUS.items()}


def _name_fields(names: tuple[str, ...]) -> list[bytes]:
    """Each column's ``name`` field, built once per distinct column list."""
    found = _NAME_FIELDS.get(names)
    if found is None:
        if len(_NAME_FIELDS) > 1000:
            _NAME_FIELDS.clear()
        found = _NAME_FIELDS[names] = [_ld(0x0A, name.encode()) for name in names]
    return found


def _one_row_feature_columns(result: LookupResult) -> list[bytes]:
    """The feature columns of a one-row response: one pass, one join, no per-column calls
    for the scalar values whose payload Feast and we encode alike."""
    parts: list[bytes] = []
    times: dict[int, bytes] = {}
    same_payload = _SAME_PAYLOAD
    one_status = _ONE_STATUS
    for name_field, vals, stats, secs in zip(_name_fields(result.plan.names), result.values,
                                             result.statuses, result.event_seconds):
        time_field = times.get(id(secs))
        if time_field is None:
            time_field = times[id(secs)] = _ld(0x22, _timestamp(secs[0]) if secs[0] else b"")
        v = vals[0]
        ours = same_payload.get(v[0]) if v else None
        if ours is not None and v is not None and len(v) < 0x80:
            value_field = bytes((0x12, len(v), ours)) + v[1:]
        else:
            value_field = _ld(0x12, feast_value_to_ours(v))
        status_field = one_status[stats[0]]
        size = len(name_field) + len(value_field) + len(status_field) + len(time_field)
        parts += (b"\x0a" + (bytes((size,)) if size < 0x80 else varint(size)), name_field,
                  value_field, status_field, time_field)
    return parts


def modelplane_response(result: LookupResult) -> bytes:
    """``modelplane.featurestore.v1.GetOnlineFeaturesResponse`` bytes."""
    columns = []
    n = result.rows
    present = _cached_ld(0x1A, bytes((1,)) * n)
    no_times = _ld(0x22, b"") * n
    for key, vals in result.entity_values.items():
        columns.append(_column((_cached_ld(0x0A, key.encode()),
                                b"".join(_ld(0x12, python_value_to_ours(v)) for v in vals),
                                present, no_times)))
    if n == 1:
        return b"".join(columns) + b"".join(_one_row_feature_columns(result))
    ts_cache: dict[int, bytes] = {}
    for name, vals, stats, secs in zip(result.plan.names, result.values, result.statuses,
                                       result.event_seconds):
        times = ts_cache.get(id(secs))
        if times is None:
            times = ts_cache[id(secs)] = _timestamps(secs, 0x22)
        if n == 1:
            ours = feast_value_to_ours(vals[0])
            values = b"\x12" + bytes((len(ours),)) + ours if len(ours) < 0x80 else _ld(0x12, ours)
        else:
            values = _our_values(vals)
        status = bytes(stats)
        columns.append(_column((_cached_ld(0x0A, name.encode()), values,
                                _cached_ld(0x1A, status.translate(_OUR_STATUS_BYTE)), times)))
    return b"".join(columns)


def feast_response(result: LookupResult) -> bytes:
    """``feast.serving.GetOnlineFeaturesResponse`` bytes (Feast's column layout: keys first)."""
    n = result.rows
    names = [*result.entity_values, *result.plan.names]
    metadata = _ld(0x0A, _ld(0x0A, b"".join(_ld(0x0A, s.encode()) for s in names)))
    vectors = []
    present = bytes((PRESENT,)) * n
    empty_ts = _ld(0x1A, b"") * n
    for vals in result.entity_values.values():
        body = (b"".join(_ld(0x0A, python_value_to_feast(v)) for v in vals)
                + _ld(0x12, present) + empty_ts)
        vectors.append(_ld(0x12, body))
    ts_cache: dict[int, bytes] = {}
    for vals, stats, secs in zip(result.values, result.statuses, result.event_seconds):
        times = ts_cache.get(id(secs))
        if times is None:
            times = ts_cache[id(secs)] = _timestamps(secs, 0x1A)
        body = _feast_values(vals) + _ld(0x12, bytes(stats)) + times
        vectors.append(_ld(0x12, body))
    return metadata + b"".join(vectors)
