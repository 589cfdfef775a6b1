"""The featurestore's records (datasets, quality reports) in SQLite and PostgreSQL: versions
per name, newest-first lists, and stores written before kit.documents opened as they are."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from modelplane.featurestore.record_store import RecordStore
from modelplane.kit.pytest_plugin import run_sql

_OLD_SCHEMA = [  # what the store created before kit.documents
    """CREATE TABLE fs_datasets (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL,
        create_time TEXT NOT NULL, payload TEXT NOT NULL, UNIQUE (name, version))""",
    """CREATE TABLE fs_quality_reports (
        id TEXT PRIMARY KEY, dataset TEXT NOT NULL, feature_view TEXT NOT NULL,
        create_time TEXT NOT NULL, payload TEXT NOT NULL)""",
    "CREATE INDEX fs_quality_reports_dataset ON fs_quality_reports (dataset)",
    "CREATE INDEX fs_quality_reports_view ON fs_quality_reports (feature_view)",
]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'featurestore.db'}"
    name = f"mp_fs_records_{request.node.name.split('[')[0][-20:]}"
    return str(request.getfixturevalue("make_postgres_database")(name))


def _dataset(i: int, name: str = "churn") -> dict[str, Any]:
    return {"id": f"ds{i:02d}", "name": name, "create_time": f"2026-01-01T00:00:{i:02d}"}


def test_datasets_take_the_next_version_of_their_name_even_when_added_at_once(url: str) -> None:
    store = RecordStore(url)
    try:
        results: list[int] = []

        def add(i: int) -> None:
            results.append(store.add_dataset(_dataset(i))["version"])

        threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [1, 2, 3, 4]
        assert store.add_dataset(_dataset(9, "other"))["version"] == 1
        page, more = store.list_datasets("churn", 3, 0)
        assert [d["id"] for d in page] == ["ds03", "ds02", "ds01"] and more
        page, more = store.list_datasets("churn", 3, 3)
        assert [d["id"] for d in page] == ["ds00"] and not more
        assert store.get_dataset("ds09") == {**_dataset(9, "other"), "version": 1}
        assert store.delete_dataset("ds09") and not store.delete_dataset("ds09")
        assert store.get_dataset("ds09") is None
        store.add_report({"id": "r1", "dataset": "ds00", "create_time": "2026-01-02T00:00:00"})
        store.add_report({"id": "r2", "feature_view": "v", "create_time": "2026-01-02T00:00:01"})
        assert [r["id"] for r in store.list_reports("", "", 10, 0)[0]] == ["r2", "r1"]
        assert [r["id"] for r in store.list_reports("ds00", "", 10, 0)[0]] == ["r1"]
        assert store.get_report("r2") == {"id": "r2", "feature_view": "v",
                                          "create_time": "2026-01-02T00:00:01"}
    finally:
        store.close()


def test_a_store_written_before_kit_documents_is_read_as_it_is(url: str) -> None:
    old = {**_dataset(1), "version": 1}
    run_sql(url, [*_OLD_SCHEMA,
        ("INSERT INTO fs_datasets VALUES (?, ?, ?, ?, ?)",
         (old["id"], old["name"], 1, old["create_time"], json.dumps(old))),
        ("INSERT INTO fs_quality_reports VALUES (?, ?, ?, ?, ?)",
         ("r1", "ds01", "", "2026-01-02T00:00:00", json.dumps({"id": "r1"})))])
    store = RecordStore(url)
    try:
        assert store.get_dataset("ds01") == old
        assert store.add_dataset(_dataset(2))["version"] == 2
        assert [d["version"] for d in store.list_datasets("churn", 10, 0)[0]] == [2, 1]
        assert store.list_reports("ds01", "", 10, 0) == ([{"id": "r1"}], False)
    finally:
        store.close()
