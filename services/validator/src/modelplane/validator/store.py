"""Where runs and reports are kept: SQLite by default, PostgreSQL in production.

Each row keeps the filterable fields as columns and the whole object as JSON
(``modelplane.kit.documents``). Lists are newest first with keyset page tokens
over (create_time, id). Blocking: call from a worker thread.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from modelplane.kit.documents import Collection, DocumentStore, document_table
from modelplane.kit.errors import NotFound
from modelplane.validator.codec import report_from_json, report_to_json, run_from_json, run_to_json
from modelplane.validator.report import CheckStatus, ValidationReport
from modelplane.validator.run import RunState, ValidationRun

metadata = sa.MetaData()
_runs = document_table("validation_runs", metadata, ["id"],
                       ["model", "version", "state", "create_time"],
                       sa.Index("validation_runs_order", "create_time", "id"))
_reports = document_table("validation_reports", metadata, ["id"],
                          ["run_id", "model", "version", "status", "create_time"],
                          sa.Index("validation_reports_order", "create_time", "id"))
RUNS = Collection(_runs)
REPORTS = Collection(_reports)
#: newest first; the page tokens' keyset
_NEWEST_FIRST = ("-create_time", "-id")


class RunStore:
    """SQL storage of runs and reports (``sqlite:///path``, a path, or ``postgresql://``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._docs = DocumentStore(url, metadata, scope="validator")

    @classmethod
    def sqlite_in(cls, directory: Path) -> RunStore:
        return cls(f"sqlite:///{directory / 'validator.db'}")

    def close(self) -> None:
        self._docs.close()

    # runs ------------------------------------------------------------------------------------

    def save_run(self, run: ValidationRun) -> None:
        assert run.create_time is not None
        with self._docs.transaction() as tx:
            tx.upsert(RUNS, {"id": run.id, "model": run.model, "version": run.version,
                             "state": run.state.value,
                             "create_time": run.create_time.isoformat()},
                      run_to_json(run), update=["state"])

    def get_run(self, run_id: str) -> ValidationRun:
        return run_from_json(self._body(RUNS, run_id, "validation_run", "RUN_NOT_FOUND"))

    def list_runs(self, *, model: str = "", version: str = "", state: RunState | None = None,
                  size: int = 0, token: str = "") -> tuple[list[ValidationRun], str]:
        filters = {"model": model, "version": version, "state": state.value if state else ""}
        bodies, next_token = self._page(RUNS, filters, size, token)
        return [run_from_json(b) for b in bodies], next_token

    def unfinished_runs(self) -> list[ValidationRun]:
        with self._docs.transaction() as tx:
            docs = tx.select(RUNS, {"state": [RunState.PENDING.value, RunState.RUNNING.value]})
        return [run_from_json(d.body) for d in docs]

    # reports ---------------------------------------------------------------------------------

    def save_report(self, report: ValidationReport) -> None:
        assert report.create_time is not None
        with self._docs.transaction() as tx:
            tx.upsert(REPORTS, {"id": report.id, "run_id": report.run_id, "model": report.model,
                                "version": report.version, "status": report.status.name,
                                "create_time": report.create_time.isoformat()},
                      report_to_json(report), update=[])

    def get_report(self, report_id: str) -> ValidationReport:
        return report_from_json(self._body(REPORTS, report_id, "validation_report",
                                           "REPORT_NOT_FOUND"))

    def list_reports(self, *, model: str = "", version: str = "", status: CheckStatus | None = None,
                     size: int = 0, token: str = "") -> tuple[list[ValidationReport], str]:
        filters = {"model": model, "version": version, "status": status.name if status else ""}
        bodies, next_token = self._page(REPORTS, filters, size, token)
        return [report_from_json(b) for b in bodies], next_token

    # runs and reports alike ------------------------------------------------------------------

    def _body(self, collection: Collection, key: str, kind: str, reason: str) -> str:
        """The stored JSON of ``key``; NOT_FOUND naming the ``kind`` (``validation_run``...)."""
        with self._docs.transaction() as tx:
            doc = tx.get(collection, key)
        if doc is None:
            raise NotFound(f"{kind.replace('_', ' ')} {key!r} not found", reason=reason,
                           metadata={kind: key})
        return doc.body

    def _page(self, collection: Collection, filters: dict[str, str], size: int,
              token: str) -> tuple[list[str], str]:
        """One page of stored JSON, newest first, and the next page's token."""
        with self._docs.transaction() as tx:
            docs, next_token = tx.page(collection, filters=filters, order=_NEWEST_FIRST,
                                       size=size, token=token, kind=collection.name)
        return [d.body for d in docs], next_token
