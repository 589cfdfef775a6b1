"""Data quality reports: computed over a saved dataset, a feature view's source or
rows the caller sends, kept in the record store, read back and listed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import pyarrow as pa

from modelplane.featurestore.data_quality import QualityOptions, QualityReport, compute_quality
from modelplane.featurestore.datasets import DatasetStore, content_hash
from modelplane.featurestore.feature_repository import FeatureRepository
from modelplane.featurestore.record_store import RecordStore
from modelplane.kit.errors import FieldViolation, InvalidArgument, NotFound


class QualityReports:
    def __init__(self, repository: FeatureRepository, datasets: DatasetStore,
                 records: RecordStore) -> None:
        self.repository = repository
        self.datasets = datasets
        self.records = records

    def compute(self, *, dataset: str = "", feature_view: str = "",
                rows: pa.Table | None = None, label_column: str = "",
                timestamp_column: str = "", entity_columns: Sequence[str] = (),
                start: datetime | None = None, end: datetime | None = None,
                histogram_bins: int = 0, top_categories: int = 0,
                gap_seconds: float = 0.0) -> QualityReport:
        rows_hash = ""
        if dataset:
            record = self.datasets.get(dataset)
            table = self.datasets.read_table(dataset)
            timestamp_column = timestamp_column or record.timestamp_column
            entity_columns = list(entity_columns) or record.join_keys
        elif feature_view:
            view, table = self.repository.read_source(feature_view, start, end)
            assert view.source is not None
            timestamp_column = timestamp_column or view.source.timestamp_field
            entity_columns = list(entity_columns) or view.join_keys
        elif rows is not None:
            table = rows
            rows_hash = content_hash(rows)
            if not timestamp_column and "event_timestamp" in rows.column_names:
                timestamp_column = "event_timestamp"
        else:
            raise InvalidArgument("give a dataset, a feature_view or rows", reason="NO_SUBJECT",
                                  field_violations=[FieldViolation("subject", "one must be set")])
        if histogram_bins < 0 or top_categories < 0 or gap_seconds < 0:
            raise InvalidArgument("histogram_bins, top_categories and gap_threshold "
                                  "must not be negative",
                                  reason="BAD_OPTIONS",
                                  field_violations=[FieldViolation("histogram_bins",
                                                                   "negative value")])
        options = QualityOptions(
            timestamp_column=timestamp_column, entity_columns=tuple(entity_columns),
            label_column=label_column, histogram_bins=min(histogram_bins or 20, 1000),
            top_categories=min(top_categories or 20, 1000),
            gap_threshold=timedelta(seconds=gap_seconds) if gap_seconds else timedelta(hours=24))
        report = compute_quality(table, options, "dq_" + uuid.uuid4().hex[:16])
        report.dataset, report.feature_view, report.rows_hash = dataset, feature_view, rows_hash
        self.records.add_report(report.to_record())
        return report

    def get(self, report_id: str) -> QualityReport:
        data = self.records.get_report(report_id)
        if data is None:
            raise NotFound(f"data quality report {report_id!r} not found",
                           reason="REPORT_NOT_FOUND",
                           metadata={"report": report_id})
        return QualityReport.from_record(data)

    def list(self, dataset: str, feature_view: str, limit: int,
             offset: int) -> tuple[list[QualityReport], bool]:
        rows, more = self.records.list_reports(dataset, feature_view, limit, offset)
        return [QualityReport.from_record(r) for r in rows], more
