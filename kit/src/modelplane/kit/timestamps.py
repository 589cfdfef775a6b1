"""Datetimes to ``google.protobuf.Timestamp``: the one conversion every service's
``convert.py`` needs (a naive datetime is taken as UTC, as protobuf does)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2


def time_to_pb(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """The Timestamp of ``value``; None (the field left unset) for None."""
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out
