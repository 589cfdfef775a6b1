"""The store interface: what a backend (embedded DuckDB, PostgreSQL) must do, and
the types its methods take and give. A backend only moves rows: it writes rows
encoded by :mod:`.encoding`, scans a window of one model's records as the
newline-delimited JSON that :mod:`.frames` parses, and gives the analyses that
window as a :class:`~.frames.Frame` (typed columns where the backend keeps them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from modelplane.observability.records import ColumnKind, Environment, TimeWindow
from modelplane.observability.store.aggregation import AggregateQuery, Aggregates, aggregate_frame
from modelplane.observability.store.encoding import ActualRow, Catalog, ConfusionRow, RecordRow
from modelplane.observability.store.frames import Frame, frame_from_ndjson, to_us

if TYPE_CHECKING:
    from modelplane.observability.columnar import ColumnarBatch

# ---------------------------------------------------------------------------
# Scans


@dataclass(frozen=True)
class ScanSpec:
    """Which of one model's records a backend scans (slices are applied later, vectorised)."""

    model: str
    versions: tuple[str, ...] = ()
    environment: Environment = Environment.UNSPECIFIED
    window: TimeWindow = field(default_factory=TimeWindow)
    prediction_ids: tuple[str, ...] = ()
    has_actual: bool | None = None
    limit: int | None = None
    #: Keyset pagination: records strictly older than (time µs, prediction id), newest first.
    before: tuple[int, str] | None = None
    newest_first: bool = False
    #: A uniform sample of this many of the matching records instead (``limit`` is
    #: not used): the records of the smallest 64-bit hashes of their prediction id
    #: (a simple random sample without replacement, the same one on every call),
    #: returned in time order.
    sample: int | None = None



def profile_bounds(window: TimeWindow) -> tuple[int | None, int | None]:
    """The bucket starts (µs) of a window's profile rows: [lo, hi). A profile
    bucket is an hour, so the window is widened to whole hours: the bucket that
    holds the window's start is in, and every bucket that starts before its end."""
    from modelplane.observability.profiles import HOUR_US

    lo = hi = None
    if window.start is not None:
        lo = to_us(window.start) // HOUR_US * HOUR_US
    if window.end is not None:
        hi = to_us(window.end)
    return lo, hi


def alert_filter(placeholder: str, model: str | None, monitor_id: str | None,
                 state: int | None) -> tuple[str, list[Any]]:
    """The condition and bound values of an alert listing, for either store's
    placeholder (``?`` or ``%s``); column names are fixed here, values always bound."""
    where: list[str] = ["true"]
    params: list[Any] = []
    for column, value in (("model", model), ("monitor_id", monitor_id), ("state", state)):
        if value:
            where.append(f"{column} = {placeholder}")
            params.append(value)
    return " AND ".join(where), params


#: Per model, from the profiles and the hours marked before profiles were kept: its
#: versions, environments and records (the model list reads these, not every
#: record). ``{P}`` is the store's aggregate of distinct values.
_SUMMARY_SQL = """
WITH p AS (
    SELECT model, version, environment, bucket_start, record_count AS n FROM obs_profiles
    UNION ALL
    SELECT model, version, environment, bucket_start, missing FROM obs_profile_gaps)
SELECT model, {P}(DISTINCT version), {P}(DISTINCT environment), sum(n)
FROM p WHERE n > 0 GROUP BY model ORDER BY model
"""


@dataclass(frozen=True)
class ModelSummary:
    model: str
    versions: list[str]
    environments: list[Environment]
    record_count: int
    actual_count: int
    first_time: datetime | None
    last_time: datetime | None


# ---------------------------------------------------------------------------
# Retention


@dataclass(frozen=True)
class RetentionCutoffs:
    """What one retention pass deletes: rows older than each instant (None = kept)."""

    #: records (and their ids and actuals) with a prediction time before this
    records: datetime | None = None
    #: profiles, confusion counts and profile gaps of hours starting before this
    profiles: datetime | None = None
    #: delivered / failed / refused webhook deliveries last changed before this
    deliveries: datetime | None = None
    #: rows deleted per statement (record ids, actuals, DuckDB records)
    batch_rows: int = 10_000


@dataclass
class RetentionResult:
    """What one retention pass deleted."""

    records: int = 0
    actuals: int = 0
    #: PostgreSQL: the monthly partitions of ``obs_records`` dropped (names)
    partitions: list[str] = field(default_factory=list)
    profiles: int = 0
    confusion: int = 0
    profile_gaps: int = 0
    deliveries: int = 0

    def add(self, other: RetentionResult) -> None:
        for name in ("records", "actuals", "profiles", "confusion", "profile_gaps",
                     "deliveries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.partitions.extend(other.partitions)

    def __bool__(self) -> bool:
        return bool(self.partitions) or any((self.records, self.actuals, self.profiles,
                                             self.confusion, self.profile_gaps,
                                             self.deliveries))


# ---------------------------------------------------------------------------
# Alerts, webhook deliveries (the outbox) and the scheduler's lease


class DeliveryState(IntEnum):
    PENDING = 0
    DELIVERED = 1
    FAILED = 2   # attempts used up, or an answer that retrying cannot change
    REFUSED = 3  # the outbound policy refused the URL at send time


@dataclass(frozen=True)
class NewDelivery:
    """A webhook call to make for an alert event, written with the alert (outbox)."""

    url: str
    event: str  # "firing" or "resolved"
    idempotency_key: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class WebhookDelivery:
    id: int
    alert_id: str
    event: str
    url: str
    payload: dict[str, Any]
    idempotency_key: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str = ""


class AlertStore(ABC):
    """Alerts, keyed by (monitor, slot) and at most one FIRING per monitor; every
    change gets a new ``seq`` (increasing), so a reader can catch up from the last
    one it saw. Each write that changes an alert also writes its webhook delivery
    (one transaction) and, on PostgreSQL, notifies ``obs_alerts``."""

    @abstractmethod
    def insert_alert(self, alert: dict[str, Any], slot: datetime,
                     delivery: NewDelivery | None) -> int | None:
        """Store a FIRING alert; its seq, or None when the monitor already has a
        FIRING alert or an alert for this slot (nothing is written then)."""

    @abstractmethod
    def resolve_alert(self, alert: dict[str, Any], delivery: NewDelivery | None) -> int | None:
        """Store the RESOLVED ``alert`` if it is still FIRING; its new seq, else None."""

    @abstractmethod
    def firing_alert(self, monitor_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_alerts(self, model: str | None = None, monitor_id: str | None = None,
                    state: int | None = None) -> list[dict[str, Any]]:
        """Newest change first."""

    @abstractmethod
    def alerts_since(self, seq: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """(seq, alert) of the changes after ``seq``, oldest first."""

    @abstractmethod
    def alert_by_id(self, alert_id: str) -> tuple[int, dict[str, Any]] | None: ...

    @abstractmethod
    def last_alert_seq(self) -> int: ...

    @abstractmethod
    def claim_deliveries(self, limit: int, claim_seconds: float) -> list[WebhookDelivery]:
        """Up to ``limit`` due PENDING deliveries, each counted as one more attempt and
        hidden from other claimers for ``claim_seconds`` (if the sender dies, the
        delivery comes back then: at least once)."""

    @abstractmethod
    def finish_delivery(self, delivery_id: int, state: DeliveryState, error: str = "",
                        retry_after: float | None = None) -> None:
        """DELIVERED / FAILED / REFUSED; or PENDING again in ``retry_after`` seconds."""

    @abstractmethod
    def list_deliveries(self, alert_id: str | None = None) -> list[WebhookDelivery]: ...

    @abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        """Take or renew the lease ``name`` for ``ttl_seconds``: (held by ``holder``,
        seconds until the current holder's lease ends)."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None: ...

    def listen_alerts(self) -> AbstractAsyncContextManager[AsyncIterator[str]] | None:
        """Notifications of alert changes from every process on this store
        (``"<seq>:<alert id>"``), or None when only this process writes it."""
        return None

    # -- alerts raised by other services (issue #17) ------------------------------

    @abstractmethod
    def insert_raised_alert(self, alert: dict[str, Any], slot: datetime) -> int | None:
        """Store a FIRING alert raised through RaiseAlert (no monitor, no webhook):
        its seq, or None when an alert with its id exists (nothing is written). Its
        ``monitor_id`` column is ``raised/<id>``, so that the per-monitor constraints
        (one FIRING, one per slot) never merge two raised alerts; the document's
        ``monitor_id`` stays empty."""


class EvaluationStore(AlertStore):
    """A backend of the evaluation store. Methods block: call them from a thread."""

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def load_catalogs(self) -> dict[str, Catalog]: ...

    @abstractmethod
    def write_records(self, rows: list[RecordRow],
                      new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> int:
        """Store rows whose prediction id is new; return how many were stored."""

    @abstractmethod
    def write_columnar(self, batch: ColumnarBatch) -> int:
        """Store a validated columnar batch's rows whose prediction id is new (and its
        ``new_columns``); return how many were stored. Stored values are the ones
        :class:`RecordEncoder` gives the same records."""

    @abstractmethod
    def write_actuals(self, rows: list[ActualRow]) -> tuple[int, int, int]:
        """Upsert actuals; (changed, identical, without a stored prediction)."""

    @abstractmethod
    def scan(self, spec: ScanSpec) -> bytes:
        """NDJSON of the matching records (see the module docstring)."""

    def scan_frame(self, spec: ScanSpec, catalog: Catalog) -> Frame:
        """The records :meth:`scan` gives, in its order, as a frame of ``catalog``'s
        columns. This default parses the NDJSON; a backend that keeps typed columns
        reads them instead (the same values)."""
        return frame_from_ndjson(self.scan(spec), catalog)

    def aggregate(self, spec: ScanSpec, catalog: Catalog, query: AggregateQuery
                  ) -> Aggregates | None:
        """Counts, confusion cells and error sums of :meth:`scan`'s records of ``spec``
        (without its limit) per time bucket and slice value (see :mod:`.aggregation`).
        A backend computes them in its SQL (GROUP BY) and ignores ``spec.limit``.
        This default reads the records (at most ``spec.limit``, the analysis's row
        budget: None past it, and the caller reads them its own way) and counts
        them in numpy."""
        # the columns the groups need, not every feature
        frame = self.scan_frame(spec, catalog.only(query.slices, query.scores))
        if spec.limit is not None and len(frame) >= spec.limit:
            return None
        return aggregate_frame(frame, query)

    @abstractmethod
    def count_records(self, spec: ScanSpec) -> int:
        """How many records :meth:`scan` of ``spec`` would return without a limit."""

    @abstractmethod
    def profile_rows(self, spec: ScanSpec) -> list[tuple[int, bytes]]:
        """(bucket start µs, profile bytes) of the profiles in ``spec``'s model,
        versions, environment and window (widened to whole hours, see
        :func:`profile_bounds`); ``spec``'s other fields are not used."""

    def profile_headers(self, spec: ScanSpec) -> list[tuple[int, int, dict[tuple[int, str],
                                                                        dict[str, int]]]]:
        """(bucket start µs, record count, category counts per column) of the profiles
        :meth:`profile_rows` gives, in its order: what counting needs, without the
        sketches. This default reads the profiles whole; a backend that keeps each
        profile's JSON header apart reads that alone."""
        from modelplane.observability.profiles import profile_header

        return [(b, *profile_header(blob)) for b, blob in self.profile_rows(spec)]

    @abstractmethod
    def confusion_rows(self, spec: ScanSpec) -> list[ConfusionRow]:
        """Confusion counts of classification records with an actual, per hour and
        per value of each categorical feature and tag (and for every record, source
        0), in the profiles' window; kept at ingest, whichever of a record and its
        actual comes last, and moved by a changed actual (not by a re-sent one)."""

    @abstractmethod
    def profile_count(self, spec: ScanSpec) -> tuple[int, int]:
        """Records counted by the profiles :meth:`profile_rows` would return, and
        records of the same hours that no profile counts (stored before profiles
        were kept: a store opened for the first time by this version marks them)."""

    def record_span(self, spec: ScanSpec) -> tuple[datetime | None, datetime | None]:
        """The first and last prediction time of ``spec``'s model, versions and
        environment (its window is not used); (None, None) without records. This
        default reads the oldest and the newest record (two one-record scans: an
        index walk on PostgreSQL); a backend may answer with one aggregate."""
        import json

        from modelplane.observability.store.frames import record_from_json

        out: list[datetime | None] = []
        for newest in (False, True):
            data = self.scan(ScanSpec(spec.model, spec.versions, spec.environment, limit=1,
                                      newest_first=newest))
            lines = [ln for ln in data.splitlines() if ln.strip()]
            out.append(record_from_json(json.loads(lines[0]), spec.model).prediction_time
                       if lines else None)
        return out[0], out[1]

    @abstractmethod
    def model_of(self, prediction_id: str) -> str | None: ...

    @abstractmethod
    def summaries(self) -> list[ModelSummary]:
        """Every model's versions, environments, records and records with an actual
        (as the profiles count them: records of hours past record retention whose
        profiles are kept count too), first and last prediction time."""

    def _summaries(self, fetch: Callable[[str, list[Any]], list[tuple[Any, ...]]],
                   distinct: str, labeled_join: str) -> list[ModelSummary]:
        """:meth:`summaries` from the profiles, without a join of every record to its
        actual: records with an actual are, for classifiers, the confusion counts'
        every-record cells (records with a predicted and an actual label); only the
        other models' records are joined to their actuals (``labeled_join``: model,
        count of the models in its one parameter). ``fetch(sql, params)`` runs a
        query; ``distinct`` is the store's aggregate of distinct values."""
        rows = fetch(_SUMMARY_SQL.format(P=distinct), [])
        labeled = dict(fetch("SELECT model, sum(n) FROM obs_confusion WHERE source = 0 "
                             "GROUP BY model", []))
        classifiers = {r[0] for r in fetch("SELECT model FROM obs_columns WHERE source = 3 "
                                           "AND name = '' AND kind <> 1", [])}
        others = [r[0] for r in rows if r[0] not in classifiers]
        if others:
            labeled.update(dict(fetch(labeled_join, [others])))
        out = []
        for model, versions, envs, n in rows:
            first, last = self.record_span(ScanSpec(model))
            out.append(ModelSummary(model, sorted(versions),
                                    [Environment(e) for e in sorted(envs)], int(n),
                                    int(labeled.get(model, 0)), first, last))
        return out

    @abstractmethod
    def set_attributions(self, model: str, attributions: dict[str, dict[str, float]]) -> None: ...

    # Documents: baselines, monitors, alerts (JSON text).
    @abstractmethod
    def put_document(self, kind: str, key: str, model: str, doc: dict[str, Any]) -> None: ...

    @abstractmethod
    def get_document(self, kind: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_documents(self, kind: str, model: str | None = None) -> list[dict[str, Any]]:
        """Documents of a kind (optionally of one model), newest key last."""

    @abstractmethod
    def delete_document(self, kind: str, key: str) -> bool: ...

    @abstractmethod
    def enforce_retention(self, cutoffs: RetentionCutoffs) -> RetentionResult:
        """Delete what is older than ``cutoffs`` (see :mod:`..retention`); what was deleted.
        Records may be kept past their cutoff on a backend that drops them in whole
        partitions (PostgreSQL: a month is dropped once all of it is older)."""
