"""The evaluation store's read side: typed filters validated against what the
store holds (catalogs shared with the ingest side, refreshed from the store when
another replica knows more), the frames loaded for them under the running
analysis's row budget and sampling plan, and the baselines analyses compare
against. The analyses themselves are in :mod:`.evaluations`.

Blocking (SQL): callers run these from a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

import numpy as np

from modelplane.kit.errors import FailedPrecondition, NotFound
from modelplane.observability.analysis_limits import (
    DEFAULT_EXACT_ROWS,
    DEFAULT_MAX_ANALYSIS_ROWS,
    RowBudget,
    current_sampling,
)
from modelplane.observability.baselines import BASELINE_KIND, Baseline, Reference, baseline_key
from modelplane.observability.frame_analysis import invalid
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    EvaluationFilter,
    TimeWindow,
    utcnow,
)
from modelplane.observability.retention import records_expired, window_expired
from modelplane.observability.slices import slice_mask, validate_predicates
from modelplane.observability.store.base import EvaluationStore, ScanSpec
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame, to_us


class _Shared(NamedTuple):
    """A frame read in a :func:`shared_frames` context."""

    frame: Frame
    window: TimeWindow
    #: the records read (before the filter's predicates): what a load charges
    read: int
    #: the feature and tag columns it holds (None: all of them)
    columns: frozenset[ColumnRef] | None
    scores: bool

    def serves(self, window: TimeWindow, columns: Sequence[ColumnRef] | None,
               scores: bool) -> bool:
        """Whether this frame holds a load of ``window`` (inside its own) with
        ``columns`` and ``scores``."""
        return (self.window.start is None or (window.start is not None
                                              and window.start >= self.window.start)) \
            and (self.window.end is None or (window.end is not None
                                             and window.end <= self.window.end)) \
            and (self.columns is None or (columns is not None
                                          and self.columns.issuperset(columns))) \
            and (self.scores or not scores)

    def within(self, window: TimeWindow) -> tuple[Frame, int]:
        """The frame's records in ``window`` (in their order), and how many records a
        read of it would have read."""
        if window == self.window:
            return self.frame, self.read
        t = self.frame.time_us
        keep = np.ones(len(t), dtype=bool)
        if window.start is not None:
            keep &= t >= to_us(window.start)
        if window.end is not None:
            keep &= t < to_us(window.end)
        frame = self.frame.take(np.flatnonzero(keep))
        # the share of the records read that the window holds (exact without predicates)
        return frame, len(frame) if len(self.frame) == self.read else self.read


#: a load's key (its validated filter but the window, and actual condition) -> what
#: its loads read
SharedFrames = dict[str, list[_Shared]]
_SHARED: ContextVar[SharedFrames | None] = ContextVar("shared_frames", default=None)


@contextmanager
def shared_frames(memo: SharedFrames | None = None) -> Iterator[SharedFrames]:
    """Within it, a load of a filter already loaded (the same filter and actual
    condition, and at least the columns asked for) gives the frame read then instead
    of reading the records again: the analyses of one dashboard page read their
    window and their reference once. ``memo`` carries the frames on to another
    thread's analyses (the page's "why" panel). A sampled load is never shared; a
    shared frame is charged to each analysis's row budget all the same."""
    memo = {} if memo is None else memo
    token = _SHARED.set(memo)
    try:
        yield memo
    finally:
        _SHARED.reset(token)


class EvaluationReader:
    """Filters, frames and baselines of the evaluation store (see the module doc)."""

    def __init__(self, store: EvaluationStore, catalogs: dict[str, Catalog],
                 catalog_lock: threading.Lock, clock: Callable[[], datetime] = utcnow,
                 max_rows: int = DEFAULT_MAX_ANALYSIS_ROWS, *,
                 exact_rows: int = DEFAULT_EXACT_ROWS,
                 record_retention_days: int = 0) -> None:
        self._store = store
        #: records older than this many days are deleted (0: kept forever)
        self.record_retention_days = record_retention_days
        self._max_rows = max_rows
        #: AUTO mode: windows with more records than this are answered from profiles
        self.exact_rows = exact_rows
        self._catalogs = catalogs
        self._catalog_lock = catalog_lock
        self._clock = clock

    # -- filters and frames -------------------------------------------------

    def refresh_catalogs(self) -> None:
        """Merge the store's catalogs into this replica's: another replica sharing the
        store may have ingested models, versions or columns this one has not seen."""
        stored = self._store.load_catalogs()
        with self._catalog_lock:
            for model, catalog in stored.items():
                self._catalogs.setdefault(model, Catalog()).kinds.update(catalog.kinds)

    def catalog(self, model: str, path: str = "filter.model") -> Catalog:
        if not model:
            raise invalid(path, "required")
        with self._catalog_lock:
            catalog = self._catalogs.get(model)
        if catalog is None:
            self.refresh_catalogs()
            with self._catalog_lock:
                catalog = self._catalogs.get(model)
        if catalog is None:
            raise NotFound(f"model {model!r} has no records in the evaluation store",
                           reason="MODEL_NOT_FOUND", metadata={"model": model})
        with self._catalog_lock:
            return Catalog(dict(catalog.kinds))

    def validate_filter(self, f: EvaluationFilter, path: str = "filter"
                        ) -> tuple[EvaluationFilter, Catalog]:
        catalog = self.catalog(f.model, f"{path}.model")
        known = set(catalog.versions())
        if not known.issuperset(f.versions):  # logged through another replica since?
            self.refresh_catalogs()
            catalog = self.catalog(f.model, f"{path}.model")
            known = set(catalog.versions())
        for i, v in enumerate(f.versions):
            if v not in known:
                raise NotFound(f"model {f.model!r} has no version {v!r} in the evaluation store "
                               f"({path}.versions[{i}])", reason="VERSION_NOT_FOUND",
                               metadata={"model": f.model, "version": v})
        f.window.validate(f"{path}.window")
        columns = catalog.columns()
        columns.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
        preds = validate_predicates(f.predicates, columns, f.model, f"{path}.predicates")
        return replace(f, predicates=tuple(preds)), catalog

    def rows_expired(self, window: TimeWindow) -> bool:
        """Whether records of ``window`` may be deleted by retention."""
        return window_expired(window, self.record_retention_days, self._clock())

    def load(self, f: EvaluationFilter, path: str = "filter", *,
             has_actual: bool | None = None, columns: Sequence[ColumnRef] | None = None,
             scores: bool = True) -> tuple[Frame, Catalog]:
        """The records of ``f`` as a frame, and the model's catalog. ``columns``: only
        these features and tags are read (and those of ``f``'s predicates; None: all of
        them); ``scores`` False: no score columns. The catalog is the whole one."""
        f, catalog = self.validate_filter(f, path)
        if self.rows_expired(f.window):
            raise records_expired(f.window, self.record_retention_days, self._clock(),
                                  f"{path}.window")
        # charged to the running analysis's row budget: never more than it and one row read
        budget = RowBudget.current(self._max_rows)
        spec = ScanSpec(f.model, f.versions, f.environment, f.window,
                        has_actual=has_actual, limit=budget.scan_limit)
        plan = current_sampling()
        wanted = None if columns is None else [*columns, *(p.column for p in f.predicates)]
        memo = _SHARED.get()
        key = repr((replace(f, window=TimeWindow()), has_actual))
        for held in memo.get(key, []) if memo is not None else []:
            if not held.serves(f.window, wanted, scores):
                continue
            frame, records = held.within(f.window)
            if plan is None or not records > plan.share(budget) >= 1:
                budget.charge(records)  # as if read again (it would not have been sampled)
                if plan is not None:
                    plan.add(records, records)
                return frame, catalog
        population = 0
        if plan is not None:
            population = self._store.count_records(spec)
            share = plan.share(budget)
            if population > share >= 1:  # a uniform sample of the side's share
                spec = replace(spec, limit=None, sample=share)
        read = catalog
        if columns is not None or not scores:
            read = catalog.only(catalog.columns() if wanted is None else wanted,
                                catalog.score_keys() if scores else ())
        frame = self._store.scan_frame(spec, read)
        budget.charge(len(frame))
        if plan is not None:
            plan.add(len(frame), population)
        records = len(frame)
        if f.predicates:
            frame = frame.take(np.flatnonzero(slice_mask(frame, f.predicates)))
        if memo is not None and spec.sample is None:
            memo.setdefault(key, []).append(_Shared(
                frame, f.window, records, None if read is catalog else frozenset(
                    ColumnRef(ColumnSource(src), name) for src, name in read.kinds
                    if src in (ColumnSource.FEATURE, ColumnSource.TAG)), scores))
        return frame, catalog

    # -- baselines ----------------------------------------------------------

    def set_baseline(self, baseline: Baseline) -> Baseline:
        if not baseline.model:
            raise invalid("baseline.model", "required")
        if not baseline.version:
            raise invalid("baseline.version", "required")
        if baseline.reference is not None:
            if baseline.reference.model != baseline.model:
                raise invalid("baseline.reference.model", "must be the baseline's model")
            self.validate_filter(baseline.reference, "baseline.reference")
        baseline.update_time = self._clock()
        self._store.put_document(BASELINE_KIND, baseline_key(baseline.model, baseline.version),
                                 baseline.model, baseline.to_dict())
        return self.get_baseline(baseline.model, baseline.version)

    def get_baseline(self, model: str, version: str) -> Baseline:
        """A stored baseline with the count of its reference records."""
        baseline = self._baseline_document(model, version)
        try:
            f, _ = self.validate_filter(baseline.reference_filter(), "baseline.reference")
            if f.predicates or self.rows_expired(f.window):  # the records decide (or refuse)
                frame, _ = self.load(f, "baseline.reference")
                baseline.record_count = len(frame)
            else:  # counted by the store, not read
                baseline.record_count = self._store.count_records(
                    ScanSpec(f.model, f.versions, f.environment, f.window))
        except NotFound:
            baseline.record_count = 0
        return baseline

    def load_reference(self, reference: Reference | None, current: EvaluationFilter,
                       path: str = "reference", *, columns: Sequence[ColumnRef] | None = None,
                       scores: bool = True) -> tuple[Frame, Baseline | None]:
        ref_filter, baseline, ref_path = self.reference_filter(reference, current, path)
        frame, _ = self.load(ref_filter, ref_path, columns=columns, scores=scores)
        return frame, baseline

    def reference_filter(self, reference: Reference | None, current: EvaluationFilter,
                         path: str = "reference"
                         ) -> tuple[EvaluationFilter, Baseline | None, str]:
        """The reference's filter (without reading records), its baseline if it
        came from one, and the request path its errors are reported under."""
        if reference is not None and reference.filter is not None:
            return reference.filter, None, f"{path}.filter"
        if reference is not None and reference.baseline is not None:
            model, version = reference.baseline
            baseline = self._baseline_document(model, version)
        else:
            versions = current.versions
            if len(versions) != 1:
                catalog = self.catalog(current.model)
                versions = tuple(catalog.versions()) if len(catalog.versions()) == 1 else versions
            if len(versions) != 1:
                raise FailedPrecondition(
                    f"{path}: unset, and the default (the baseline of the current version) "
                    f"needs exactly one version in the current filter",
                    reason="REFERENCE_REQUIRED", metadata={"model": current.model})
            try:
                baseline = self._baseline_document(current.model, versions[0])
            except NotFound:
                raise FailedPrecondition(
                    f"{path}: unset, and model {current.model!r} version {versions[0]!r} has "
                    f"no baseline (SetBaseline, or pass a reference filter)",
                    reason="BASELINE_NOT_FOUND",
                    metadata={"model": current.model, "version": versions[0]}) from None
        return baseline.reference_filter(), baseline, f"{path}.baseline"

    def _baseline_document(self, model: str, version: str) -> Baseline:
        """A stored baseline without its record count (get_baseline reads that)."""
        if not model:
            raise invalid("model", "required")
        if not version:
            raise invalid("version", "required")
        doc = self._store.get_document(BASELINE_KIND, baseline_key(model, version))
        if doc is None:
            raise NotFound(f"model {model!r} version {version!r} has no baseline",
                           reason="BASELINE_NOT_FOUND", metadata={"model": model,
                                                                 "version": version})
        return Baseline.from_dict(doc)
