"""The featurestore's own records (datasets, data quality reports) in SQLite or PostgreSQL.

Feast keeps the definitions; this keeps what the service makes. Each record
is a JSON document plus the columns it is looked up and listed by
(``modelplane.kit.documents``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from modelplane.kit.documents import Collection, DocumentStore, document_table
from modelplane.kit.errors import AlreadyExists

metadata = sa.MetaData()
_datasets = document_table("fs_datasets", metadata, ["id"], ["name", "create_time"],
                           sa.Column("version", sa.Integer, nullable=False),
                           sa.UniqueConstraint("name", "version"), body="payload")
_reports = document_table("fs_quality_reports", metadata, ["id"],
                          ["dataset", "feature_view", "create_time"],
                          sa.Index("fs_quality_reports_dataset", "dataset"),
                          sa.Index("fs_quality_reports_view", "feature_view"), body="payload")
DATASETS = Collection(_datasets, body="payload")
REPORTS = Collection(_reports, body="payload")
_NEWEST_FIRST = ("-create_time", "-id")


class RecordStore:
    def __init__(self, url: str) -> None:
        """``url``: ``sqlite:///path`` or ``postgresql://...``."""
        self.url = url
        self._docs = DocumentStore(url, metadata, scope="featurestore")

    def close(self) -> None:
        self._docs.close()

    # ------------------------------------------------------------ datasets

    def add_dataset(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert ``record`` as the next version of its name; sets ``version``."""
        for _ in range(5):
            try:
                with self._docs.transaction() as tx:
                    latest = tx.execute(sa.select(sa.func.coalesce(sa.func.max(_datasets.c.version),
                                                                   0))
                                        .where(_datasets.c.name == record["name"])).scalar_one()
                    record["version"] = int(latest) + 1
                    tx.insert(DATASETS, {"id": record["id"], "name": record["name"],
                                         "version": record["version"],
                                         "create_time": record["create_time"]}, record)
                return record
            except AlreadyExists:  # a concurrent writer took the version: try the next
                continue
        raise AlreadyExists(f"could not assign a version to dataset {record['name']!r}",
                            reason="DATASET_VERSION_CONFLICT", metadata={"dataset": record["name"]})

    def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        with self._docs.transaction() as tx:
            doc = tx.get(DATASETS, dataset_id)
        return doc.data if doc else None

    def list_datasets(self, name: str, limit: int,
                      offset: int) -> tuple[list[dict[str, Any]], bool]:
        with self._docs.transaction() as tx:
            docs = tx.select(DATASETS, {"name": name}, order=_NEWEST_FIRST, limit=limit + 1,
                             offset=offset)
        return [d.data for d in docs[:limit]], len(docs) > limit

    def delete_dataset(self, dataset_id: str) -> bool:
        with self._docs.transaction() as tx:
            return tx.delete(DATASETS, dataset_id) is not None

    # ------------------------------------------------------------ reports

    def add_report(self, record: dict[str, Any]) -> None:
        with self._docs.transaction() as tx:
            tx.insert(REPORTS, {"id": record["id"], "dataset": record.get("dataset", ""),
                                "feature_view": record.get("feature_view", ""),
                                "create_time": record["create_time"]}, record)

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        with self._docs.transaction() as tx:
            doc = tx.get(REPORTS, report_id)
        return doc.data if doc else None

    def list_reports(self, dataset: str, feature_view: str, limit: int,
                     offset: int) -> tuple[list[dict[str, Any]], bool]:
        with self._docs.transaction() as tx:
            docs = tx.select(REPORTS, {"dataset": dataset, "feature_view": feature_view},
                             order=_NEWEST_FIRST, limit=limit + 1, offset=offset)
        return [d.data for d in docs[:limit]], len(docs) > limit
