"""The services' one datetime -> Timestamp conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from modelplane.kit.timestamps import time_to_pb


def test_none_leaves_the_field_unset() -> None:
    assert time_to_pb(None) is None


def test_an_aware_time_keeps_its_instant_to_the_microsecond() -> None:
    t = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    ts = time_to_pb(t)
    assert ts is not None
    assert ts.ToDatetime(tzinfo=UTC) == t
    assert ts.seconds == int(t.timestamp()) and ts.nanos == 123456000


def test_a_naive_time_is_taken_as_utc() -> None:
    ts = time_to_pb(datetime(2026, 3, 1, 12, 0))
    assert ts is not None
    assert ts.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
