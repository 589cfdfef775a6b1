"""The model page's query parameters (time range, version) and the over-time
chart's bucket, chosen from the time range.

``?days=N`` (the last N days up to the model's last prediction; decimals allowed,
``days=0.0417`` is about an hour), or ``?from=...&to=...`` (ISO 8601 dates or
times, UTC unless an offset is given; either may be left out), and
``?version=V`` (one of the model's versions). Nothing given: every record, every
version. A bad value is an :class:`InvalidArgument` (the dashboard answers 400).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability.records import TimeWindow

#: the widest ``days`` accepted (ten years)
MAX_DAYS = 3650
#: the over-time chart's buckets, smallest first; sub-hour ones only for short ranges
BUCKETS: tuple[timedelta, ...] = (
    *(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30)),
    *(timedelta(hours=h) for h in (1, 2, 3, 6, 12)),
    *(timedelta(days=d) for d in (1, 2, 7, 14, 30, 91, 365)))
#: at most this many points on the over-time chart
MAX_POINTS = 60
#: from this range on, buckets are whole hours (the evaluations can then answer
#: from the hourly profiles instead of the records)
WHOLE_HOURS_FROM = timedelta(hours=20)
#: the quick links above the charts
QUICK_RANGES: tuple[tuple[str, str], ...] = (
    ("last hour", "0.0417"), ("last day", "1"), ("7 days", "7"), ("30 days", "30"))


def _bad(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason="BAD_DASHBOARD_PARAMETER",
                           field_violations=[FieldViolation(field, description)])


@dataclass(frozen=True)
class PageRange:
    """What the model page shows: a window (None = every record) and a version."""

    days: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    version: str = ""

    def query(self, **change: str | None) -> str:
        """This range's query string with ``change`` applied (None drops a key)."""
        from urllib.parse import urlencode

        q: dict[str, str] = {}
        if self.days is not None:
            q["days"] = f"{self.days:g}"
        if self.start is not None:
            q["from"] = self.start.isoformat()
        if self.end is not None:
            q["to"] = self.end.isoformat()
        if self.version:
            q["version"] = self.version
        for k, v in change.items():
            k = "from" if k == "from_" else k
            if v is None:
                q.pop(k, None)
            else:
                q[k] = v
        return ("?" + urlencode(q)) if q else ""


def _time(name: str, raw: str) -> datetime:
    try:
        t = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(name, f"{raw[:40]!r} is not an ISO 8601 date or time "
                   "(e.g. 2026-12-07 or 2026-12-07T06:30)") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def parse_range(params: Mapping[str, str], versions: Sequence[str]) -> PageRange:
    """The page's range from its query parameters (``key`` is ignored)."""
    known = {"days", "from", "to", "version", "key"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise _bad(unknown[0], "unknown parameter (the model page takes days, from, to "
                   "and version)")
    days: float | None = None
    raw_days = params.get("days", "").strip()
    if raw_days:
        try:
            days = float(raw_days)
        except ValueError:
            raise _bad("days", f"{raw_days[:40]!r} is not a number") from None
        if not math.isfinite(days) or days <= 0 or days > MAX_DAYS:
            raise _bad("days", f"must be more than 0 and at most {MAX_DAYS}")
    raw_from, raw_to = params.get("from", "").strip(), params.get("to", "").strip()
    if days is not None and (raw_from or raw_to):
        raise _bad("days", "give either days or from/to, not both")
    start = _time("from", raw_from) if raw_from else None
    end = _time("to", raw_to) if raw_to else None
    if start is not None and end is not None and end <= start:
        raise _bad("to", f"{end.isoformat()} is not after from {start.isoformat()}")
    version = params.get("version", "").strip()
    if version and version not in versions:
        raise _bad("version", f"{version[:60]!r} is not a version of this model "
                   f"(it has {', '.join(versions) or 'none'})")
    return PageRange(days, start, end, version)


def choose_bucket(span: timedelta) -> timedelta:
    """The smallest bucket that keeps the chart at most :data:`MAX_POINTS` points;
    whole hours from :data:`WHOLE_HOURS_FROM` on. An hour gives minutes (60 points),
    a day hours (24), a week 3 hours (56), a quarter 2 days (46)."""
    for b in BUCKETS:
        if span >= WHOLE_HOURS_FROM and b < timedelta(hours=1):
            continue
        if round(span / b) <= MAX_POINTS:  # a range of "about an hour" still gets minutes
            return b
    return BUCKETS[-1]


def window_for(r: PageRange, first: datetime, last: datetime
               ) -> tuple[TimeWindow, timedelta]:
    """The window to read and its bucket. Ranges are anchored on the model's last
    prediction (``days``) or on its records (an open side of from/to). The start is
    floored to the bucket (so buckets fall on round times, and on the hour when
    they are hours)."""
    end = r.end or (last + timedelta(seconds=1))
    start = end - timedelta(days=r.days) if r.days is not None else (r.start or first)
    span = max(end - start, timedelta(minutes=1))
    bucket = choose_bucket(span)
    width = int(bucket.total_seconds())
    floored = datetime.fromtimestamp(int(start.timestamp()) // width * width, tz=UTC)
    return TimeWindow(floored, end), bucket


def describe_bucket(b: timedelta) -> str:
    s = int(b.total_seconds())
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s % n == 0:
            k = s // n
            return f"{k} {unit}{'s' if k != 1 else ''}"
    return f"{s} s"


__all__ = ["BUCKETS", "MAX_DAYS", "MAX_POINTS", "QUICK_RANGES", "PageRange", "choose_bucket",
           "describe_bucket", "parse_range", "window_for"]
