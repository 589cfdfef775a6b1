"""The hand-assembled protobuf responses parse to exactly what the generated classes build."""

from __future__ import annotations

import struct

import pytest
from feast.protos.feast.serving import ServingService_pb2 as feast_pb
from feast.protos.feast.types.Value_pb2 import Value as FeastValue
from google.protobuf.timestamp_pb2 import Timestamp

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.definitions import ValueKind
from modelplane.featurestore.online_lookup import (
    NOT_FOUND,
    NULL_VALUE,
    OUTSIDE_MAX_AGE,
    PRESENT,
    LookupPlan,
    LookupResult,
)
from modelplane.featurestore.v1 import featurestore_pb2 as pb
from modelplane.featurestore.wire import feast_response, feast_value_to_ours, modelplane_response

FEAST_VALUES = [
    FeastValue(double_val=1.5), FeastValue(double_val=-2e300), FeastValue(int64_val=-7),
    FeastValue(int64_val=2**62), FeastValue(int32_val=-3), FeastValue(string_val="héllo"),
    FeastValue(string_val=""), FeastValue(bool_val=True), FeastValue(bytes_val=b"\x00\x01"),
    FeastValue(float_val=0.25), FeastValue(unix_timestamp_val=1_700_000_000),
]


def ours_expected(v: FeastValue) -> types_pb2.Value:
    kind = v.WhichOneof("val")
    if kind in ("double_val", "float_val"):
        return types_pb2.Value(double_value=getattr(v, kind))
    if kind in ("int64_val", "int32_val"):
        return types_pb2.Value(int64_value=getattr(v, kind))
    if kind == "string_val":
        return types_pb2.Value(string_value=v.string_val)
    if kind == "bool_val":
        return types_pb2.Value(bool_value=v.bool_val)
    if kind == "bytes_val":
        return types_pb2.Value(bytes_value=v.bytes_val)
    if kind == "unix_timestamp_val":
        return types_pb2.Value(timestamp_value=Timestamp(seconds=v.unix_timestamp_val))
    return types_pb2.Value(null_value=True)


@pytest.mark.parametrize("value", FEAST_VALUES, ids=lambda v: v.WhichOneof("val"))
def test_each_feast_scalar_becomes_the_same_modelplane_value(value: FeastValue) -> None:
    ours = types_pb2.Value.FromString(feast_value_to_ours(value.SerializeToString()))
    assert ours == ours_expected(value)
    assert types_pb2.Value.FromString(feast_value_to_ours(b"")).null_value


def _result(columns: list[list[bytes | None]], stats: list[list[int]],
            secs: list[float]) -> LookupResult:
    names = tuple(f"c{i}" for i in range(len(columns)))
    plan = LookupPlan(names=names, refs=tuple(f"v:{n}" for n in names), views=(),
                      join_keys={"k": ValueKind.INT64})
    n = len(secs)
    return LookupResult(plan, n, {"k": list(range(n))}, columns, stats, [secs] * len(columns))


@pytest.mark.parametrize("n", [1, 3, 40])
def test_responses_match_the_generated_messages(n: int) -> None:
    doubles = [FeastValue(double_val=i * 0.5).SerializeToString() for i in range(n)]
    mixed = [FEAST_VALUES[i % len(FEAST_VALUES)].SerializeToString() for i in range(n)]
    gappy: list[bytes | None] = [None if i % 3 == 0 else FeastValue(int64_val=i).SerializeToString()
                                 for i in range(n)]
    secs = [0.0 if i % 3 == 0 else 1_700_000_000.25 + i for i in range(n)]
    stats = [[PRESENT] * n, [PRESENT] * n, [NOT_FOUND if v is None else PRESENT for v in gappy]]
    stats[1][0] = NULL_VALUE
    result = _result([doubles, mixed, gappy], stats, secs)

    ours = pb.GetOnlineFeaturesResponse.FromString(modelplane_response(result))
    assert [c.name for c in ours.columns] == ["k", "c0", "c1", "c2"]
    assert [v.int64_value for v in ours.columns[0].values] == list(range(n))
    for col, raw in zip(ours.columns[1:], (doubles, mixed, gappy)):
        assert list(col.values) == [ours_expected(FeastValue.FromString(r or b"")) for r in raw]
    our_status = {PRESENT: pb.FEATURE_STATUS_PRESENT, NOT_FOUND: pb.FEATURE_STATUS_NOT_FOUND,
                  NULL_VALUE: pb.FEATURE_STATUS_NULL_VALUE}
    for col, st in zip(ours.columns[1:], stats):
        assert list(col.statuses) == [our_status[s] for s in st]
        expect = [Timestamp(seconds=int(s), nanos=round((s - int(s)) * 1e9)) if s else Timestamp()
                  for s in secs]
        assert list(col.event_times) == expect

    feast = feast_pb.GetOnlineFeaturesResponse.FromString(feast_response(result))
    assert list(feast.metadata.feature_names.val) == ["k", "c0", "c1", "c2"]
    for vec, raw in zip(feast.results[1:], (doubles, mixed, gappy)):
        assert [v.SerializeToString() for v in vec.values] == [r or b"" for r in raw]
    assert list(feast.results[3].statuses) == stats[2]
    assert struct.pack("<d", feast.results[1].values[-1].double_val) == struct.pack("<d",
                                                                                    (n - 1) * 0.5)


@pytest.mark.parametrize("value", [*FEAST_VALUES, FeastValue(string_val="x" * 300), None],
                         ids=lambda v: "missing" if v is None else f"{v.WhichOneof('val')}"
                                                                     f"-{v.ByteSize()}")
def test_one_row_responses_match_the_generated_messages(value: FeastValue | None) -> None:
    """The one-row path (each scalar type, a value too long for a one-byte length, nothing
    stored, every status) parses to what the generated classes build."""
    raw = None if value is None else value.SerializeToString()
    statuses = [NOT_FOUND if raw is None else PRESENT, OUTSIDE_MAX_AGE, NULL_VALUE]
    columns: list[list[bytes | None]] = [[raw], [None], [b""]]
    result = _result(columns, [[s] for s in statuses], [1_700_000_000.5])
    result.event_seconds[1] = [1_600_000_000.0]  # a second view's event time
    ours = pb.GetOnlineFeaturesResponse.FromString(modelplane_response(result))
    expected = pb.GetOnlineFeaturesResponse(columns=[
        pb.OnlineFeatureColumn(name="k", values=[types_pb2.Value(int64_value=0)],
                               statuses=[pb.FEATURE_STATUS_PRESENT], event_times=[Timestamp()]),
        pb.OnlineFeatureColumn(name="c0", values=[ours_expected(value or FeastValue())],
                               statuses=[pb.FEATURE_STATUS_NOT_FOUND if raw is None
                                         else pb.FEATURE_STATUS_PRESENT],
                               event_times=[Timestamp(seconds=1_700_000_000, nanos=500_000_000)]),
        pb.OnlineFeatureColumn(name="c1", values=[types_pb2.Value(null_value=True)],
                               statuses=[pb.FEATURE_STATUS_OUTSIDE_MAX_AGE],
                               event_times=[Timestamp(seconds=1_600_000_000)]),
        pb.OnlineFeatureColumn(name="c2", values=[types_pb2.Value(null_value=True)],
                               statuses=[pb.FEATURE_STATUS_NULL_VALUE],
                               event_times=[Timestamp(seconds=1_700_000_000, nanos=500_000_000)])])
    assert ours == expected
