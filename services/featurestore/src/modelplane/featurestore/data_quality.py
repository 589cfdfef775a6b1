"""Completeness and quality of a table: history, gaps, missing values, duplicates, labels,
distributions.

Pure computation on an Arrow table (through pandas/numpy); the statistics
are stored with the report so observability can use them as the training
baseline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelplane.kit.errors import FieldViolation, InvalidArgument

QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_GAPS = 100


@dataclass
class HistogramBin:
    lower: float
    upper: float
    count: int


@dataclass
class CategoryCount:
    value: str
    count: int


@dataclass
class ColumnStatistics:
    name: str
    kind: str  # NUMERIC | CATEGORICAL | TIMESTAMP | BOOL
    arrow_type: str
    count: int
    missing_count: int
    missing_fraction: float
    distinct_count: int
    mean: float = 0.0
    std: float = 0.0
    min: float = 0.0
    max: float = 0.0
    quantile_levels: list[float] = field(default_factory=list)
    quantiles: list[float] = field(default_factory=list)
    histogram: list[HistogramBin] = field(default_factory=list)
    top_categories: list[CategoryCount] = field(default_factory=list)


@dataclass
class LabelQuality:
    label_column: str
    unlabeled_count: int
    unlabeled_fraction: float
    conflicting_groups: int
    conflicting_rows: int
    label_counts: list[CategoryCount]


@dataclass
class QualityReport:
    id: str
    create_time: str
    row_count: int
    timestamp_column: str
    entity_columns: list[str]
    dataset: str = ""
    feature_view: str = ""
    rows_hash: str = ""
    first_event: str = ""
    last_event: str = ""
    history_seconds: float = 0.0
    gaps: list[tuple[str, str]] = field(default_factory=list)
    duplicate_events: int = 0
    entity_count: int = 0
    label: LabelQuality | None = None
    columns: list[ColumnStatistics] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> QualityReport:
        data = dict(data)
        label = data.pop("label", None)
        columns = data.pop("columns", [])
        report = cls(**data)
        report.gaps = [tuple(g) for g in report.gaps]  # type: ignore[misc]
        if label:
            label["label_counts"] = [CategoryCount(**c) for c in label["label_counts"]]
            report.label = LabelQuality(**label)
        for c in columns:
            c["histogram"] = [HistogramBin(**b) for b in c.get("histogram", [])]
            c["top_categories"] = [CategoryCount(**b) for b in c.get("top_categories", [])]
            report.columns.append(ColumnStatistics(**c))
        return report


@dataclass(frozen=True)
class QualityOptions:
    timestamp_column: str = ""
    entity_columns: tuple[str, ...] = ()
    label_column: str = ""
    histogram_bins: int = 20
    top_categories: int = 20
    gap_threshold: timedelta = timedelta(hours=24)


def _iso(ts: Any) -> str:
    if ts is None or pd.isna(ts):
        return ""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.isoformat()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _column_statistics(name: str, series: pd.Series, arrow_type: pa.DataType,
                       options: QualityOptions) -> ColumnStatistics:
    n = len(series)
    missing = int(series.isna().sum())
    present = series.dropna()
    stats = ColumnStatistics(name=name, kind="CATEGORICAL", arrow_type=str(arrow_type), count=n,
                             missing_count=missing, missing_fraction=(missing / n) if n else 0.0,
                             distinct_count=int(present.nunique()) if len(present) else 0)
    t = pa.types
    if t.is_boolean(arrow_type):
        stats.kind = "BOOL"
        values = present.astype(float).to_numpy()
        if len(values):
            stats.mean, stats.std = float(values.mean()), float(values.std(ddof=0))
            stats.min, stats.max = float(values.min()), float(values.max())
    elif t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        stats.kind = "NUMERIC"
        values = present.astype(float).to_numpy()
        values = values[np.isfinite(values)]
        if len(values):
            stats.mean, stats.std = float(values.mean()), float(values.std(ddof=0))
            stats.min, stats.max = float(values.min()), float(values.max())
            stats.quantile_levels = list(QUANTILE_LEVELS)
            stats.quantiles = [float(q) for q in np.quantile(values, QUANTILE_LEVELS)]
            counts, edges = np.histogram(values, bins=max(1, options.histogram_bins))
            stats.histogram = [HistogramBin(float(edges[i]), float(edges[i + 1]), int(c))
                               for i, c in enumerate(counts)]
        return stats
    elif t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        stats.kind = "TIMESTAMP"
        if len(present):
            secs = pd.to_datetime(present, utc=True).astype("int64").to_numpy() / 1e9
            stats.min, stats.max = float(secs.min()), float(secs.max())
            stats.mean = float(secs.mean())
        return stats
    if len(present):
        counts = present.map(_text).value_counts()
        stats.top_categories = [CategoryCount(str(v), int(c))
                                for v, c in counts.head(options.top_categories).items()]
    return stats


def check_columns(table: pa.Table, options: QualityOptions) -> None:
    violations = []
    names = set(table.column_names)
    if options.timestamp_column and options.timestamp_column not in names:
        violations.append(FieldViolation("timestamp_column",
                                         f"no column {options.timestamp_column!r} in the data"))
    for i, c in enumerate(options.entity_columns):
        if c not in names:
            violations.append(FieldViolation(f"entity_columns[{i}]",
                                             f"no column {c!r} in the data"))
    if options.label_column and options.label_column not in names:
        violations.append(FieldViolation("label_column",
                                         f"no column {options.label_column!r} in the data"))
    if violations:
        detail = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgument(f"data quality request names missing columns: {detail}",
                              reason="COLUMN_NOT_FOUND", field_violations=violations,
                              metadata={"columns": ",".join(sorted(names))[:500]})


def compute_quality(table: pa.Table, options: QualityOptions, report_id: str) -> QualityReport:
    check_columns(table, options)
    df = table.to_pandas()
    n = len(df)
    ts_col = options.timestamp_column
    keys = list(options.entity_columns)
    report = QualityReport(id=report_id, create_time=datetime.now(UTC).isoformat(),
                           row_count=n, timestamp_column=ts_col, entity_columns=keys)
    if ts_col and n:
        ts = pd.to_datetime(df[ts_col], utc=True).dropna().sort_values()
        if len(ts):
            report.first_event, report.last_event = _iso(ts.iloc[0]), _iso(ts.iloc[-1])
            report.history_seconds = float((ts.iloc[-1] - ts.iloc[0]).total_seconds())
            unique = ts.drop_duplicates().reset_index(drop=True)
            diffs = unique.diff()
            gaps = [(_iso(unique[i - 1]), _iso(unique[i])) for i in
                    np.nonzero((diffs > options.gap_threshold).to_numpy())[0]]
            report.gaps = gaps[:MAX_GAPS]
    if keys and n:
        report.entity_count = int(df[keys].drop_duplicates().shape[0])
    dup_subset = keys + ([ts_col] if ts_col else [])
    if dup_subset and n:
        report.duplicate_events = int(df.duplicated(subset=dup_subset).sum())
    if options.label_column:
        label = df[options.label_column]
        unlabeled = int(label.isna().sum())
        features = [c for c in df.columns if c not in {options.label_column, ts_col, *keys}]
        conflicting_groups = conflicting_rows = 0
        labeled = df[label.notna()]
        if features and len(labeled):
            hashed = pd.util.hash_pandas_object(labeled[features].map(_text)
                                                if hasattr(labeled, "map") else labeled[features],
                                                index=False)
            per_group = labeled.groupby(hashed.to_numpy())[options.label_column].nunique()
            bad = per_group[per_group > 1].index
            conflicting_groups = len(bad)
            conflicting_rows = int(np.isin(hashed.to_numpy(), bad).sum())
        counts = label.dropna().map(_text).value_counts()
        report.label = LabelQuality(
            label_column=options.label_column, unlabeled_count=unlabeled,
            unlabeled_fraction=(unlabeled / n) if n else 0.0,
            conflicting_groups=conflicting_groups, conflicting_rows=conflicting_rows,
            label_counts=[CategoryCount(str(v), int(c)) for v, c in counts.items()])
    for name in table.column_names:
        report.columns.append(_column_statistics(name, df[name], table.schema.field(name).type,
                                                 options))
    return report
