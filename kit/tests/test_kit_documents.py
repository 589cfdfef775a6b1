"""The document store behaves the same on SQLite and PostgreSQL: writes, compare-and-set,
keyset pages, hooks and notifications in the writing transaction, old tables opened as is."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from modelplane.kit.documents import Collection, DocumentStore, Transaction
from modelplane.kit.errors import Aborted, AlreadyExists, InvalidArgument, NotFound
from modelplane.kit.pytest_plugin import run_sql

metadata = sa.MetaData()
items = sa.Table(
    "kit_doc_items", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("create_time", sa.Text, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
counter = sa.Table(
    "kit_doc_counter", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
stamped = sa.Table(
    "kit_doc_stamped", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
ITEMS = Collection(items, version="etag")
CHANNEL = "kit_doc_changes"


def _next(tx: Transaction, op: str, key: tuple[Any, ...]) -> dict[str, Any]:
    tx.execute(counter.update().values(value=counter.c.value + 1))
    value = int(tx.execute(sa.select(counter.c.value)).scalar_one())
    tx.notify(CHANNEL, {"name": key[0], "generation": value})
    return {"generation": value}


STAMPED = Collection(stamped, on_write=_next)


def _seed(tx: Transaction) -> None:
    if tx.execute(sa.select(counter.c.id)).first() is None:
        tx.execute(counter.insert().values(id=1, value=0))


@pytest.fixture(scope="module")
def postgres_url(make_postgres_database: Callable[[str], str]) -> str:
    return make_postgres_database("mp_kit_documents")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'docs.db'}"
    pg: str = request.getfixturevalue("postgres_url")
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kit_doc_items, kit_doc_counter, kit_doc_stamped")
    return pg


@pytest.fixture
def store(url: str) -> Iterator[DocumentStore]:
    s = DocumentStore(url, metadata, scope="kit-test", setup=_seed)
    yield s
    s.close()


def _item(i: int, owner: str = "ann", t: int | None = None) -> dict[str, Any]:
    return {"id": f"i{i:02d}", "owner": owner,
            "create_time": f"2026-01-01T00:00:{t if t is not None else i:02d}", "etag": "e0"}


def test_a_document_round_trips_and_a_duplicate_key_is_already_exists(
        store: DocumentStore) -> None:
    with store.transaction() as tx:
        tx.insert(ITEMS, _item(1), {"x": 1})
    with store.transaction() as tx:
        doc = tx.get(ITEMS, "i01")
        assert doc is not None and doc.data == {"x": 1} and doc.columns["owner"] == "ann"
        assert tx.get(ITEMS, "nope") is None
    with pytest.raises(AlreadyExists) as err, store.transaction() as tx:
        tx.insert(ITEMS, _item(1), {"x": 2},
                  exists=lambda: AlreadyExists("taken", reason="ITEM_EXISTS"))
    assert err.value.reason == "ITEM_EXISTS"
    with store.transaction() as tx:
        tx.insert(ITEMS, _item(2), {"x": 2})
        with pytest.raises(AlreadyExists):  # the transaction stays usable after the clash
            tx.insert(ITEMS, _item(2), {"x": 3})
        tx.insert(ITEMS, _item(3), {"x": 3})
    with store.transaction() as tx:
        assert [d.data["x"] for d in tx.select(ITEMS, order=("id",))] == [1, 2, 3]


def test_a_failed_or_rolled_back_transaction_writes_nothing(store: DocumentStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert(ITEMS, _item(1), {})
        raise RuntimeError("boom")
    with store.transaction() as tx:
        tx.insert(ITEMS, _item(2), {})
        tx.rollback()
    with store.transaction() as tx:
        assert tx.select(ITEMS) == []


def test_replace_is_a_compare_and_set_on_the_version_column(store: DocumentStore) -> None:
    with store.transaction() as tx:
        tx.insert(ITEMS, _item(1), {"v": 0})
        tx.replace(ITEMS, {**_item(1), "etag": "e1"}, {"v": 1}, expected="e0")
    with pytest.raises(Aborted) as changed, store.transaction() as tx:
        tx.replace(ITEMS, {**_item(1), "etag": "e2"}, {"v": 2}, expected="e0",
                   changed=lambda etag: Aborted(f"now {etag}", reason="ETAG_MISMATCH"))
    assert changed.value.reason == "ETAG_MISMATCH" and changed.value.message == "now e1"
    with pytest.raises(NotFound), store.transaction() as tx:
        tx.replace(ITEMS, {**_item(9), "etag": "e2"}, {}, expected="e0")
    with store.transaction() as tx:
        doc = tx.get(ITEMS, "i01")
        assert doc is not None and doc.data == {"v": 1} and doc.columns["etag"] == "e1"


def test_of_two_concurrent_writers_expecting_one_etag_one_wins_the_other_is_aborted(
        store: DocumentStore) -> None:
    with store.transaction() as tx:
        tx.insert(ITEMS, _item(1), {"by": ""})
    both_read = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def writer(name: str) -> None:
        with store.transaction() as tx:
            doc = tx.get(ITEMS, "i01")
        assert doc is not None
        both_read.wait(timeout=10)  # both have read etag e0 before either writes
        try:
            with store.transaction() as tx:
                tx.replace(ITEMS, {**_item(1), "etag": name}, {"by": name},
                           expected=doc.columns["etag"])
            outcomes[name] = "won"
        except Aborted:
            outcomes[name] = "aborted"

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["aborted", "won"], outcomes
    winner = next(n for n, o in outcomes.items() if o == "won")
    with store.transaction() as tx:
        doc = tx.get(ITEMS, "i01")
        assert doc is not None and doc.data == {"by": winner} and doc.columns["etag"] == winner


def test_upsert_overwrites_only_the_columns_named(store: DocumentStore) -> None:
    with store.transaction() as tx:
        tx.upsert(ITEMS, _item(1), {"v": 1})
        tx.upsert(ITEMS, {**_item(1), "owner": "bob", "etag": "e5"}, {"v": 2}, update=["etag"])
        doc = tx.get(ITEMS, "i01")
    assert doc is not None and doc.data == {"v": 2}
    assert (doc.columns["owner"], doc.columns["etag"]) == ("ann", "e5")


def test_pages_walk_every_match_newest_first_and_a_token_is_bound_to_its_filters(
        store: DocumentStore) -> None:
    with store.transaction() as tx:
        for i in range(7):  # ties on create_time are ordered by id
            tx.insert(ITEMS, _item(i, "ann", t=i // 2), {"i": i})
        tx.insert(ITEMS, _item(50, "bob"), {"i": 50})
    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        with store.transaction() as tx:
            docs, token = tx.page(ITEMS, filters={"owner": "ann"},
                                  order=("-create_time", "-id"), size=3, token=token,
                                  kind="items")
        seen += [d.data["i"] for d in docs]
        pages += 1
        if not token:
            break
        if pages == 1:
            with pytest.raises(InvalidArgument) as err, store.transaction() as tx:
                tx.page(ITEMS, filters={"owner": "bob"}, order=("-create_time", "-id"),
                        size=3, token=token, kind="items")
            assert err.value.reason == "INVALID_PAGE_TOKEN"
    assert seen == [6, 5, 4, 3, 2, 1, 0] and pages == 3
    with pytest.raises(InvalidArgument), store.transaction() as tx:
        tx.page(ITEMS, filters={"owner": "ann"}, order=("-create_time", "-id"), size=3,
                token="bm90LWEtdG9rZW4", kind="items")
    with store.transaction() as tx:
        assert [d.data["i"] for d in tx.select(ITEMS, {"owner": ["bob"]}, order=("id",))] == [50]
        assert [d.data["i"] for d in tx.select(ITEMS, {"owner": ""}, order=("id",),
                                               after=("i04",), limit=2)] == [5, 6]


def test_the_write_hook_stamps_every_write_and_is_undone_with_a_delete_of_nothing(
        store: DocumentStore) -> None:
    listener = psycopg.connect(store.url, autocommit=True) if store.postgres else None
    if listener is not None:
        listener.execute(f"LISTEN {CHANNEL}")
    try:
        with store.transaction() as tx:
            first = tx.insert(STAMPED, {"name": "a"}, {})["generation"]
        with pytest.raises(AlreadyExists), store.transaction() as tx:
            tx.insert(STAMPED, {"name": "a"}, {})  # refused: its number is not taken
        with store.transaction() as tx:
            assert tx.delete(STAMPED, "missing") is None  # nothing deleted: no number taken
            second = tx.upsert(STAMPED, {"name": "a"}, {"v": 2})["generation"]
        with store.transaction() as tx:
            gone = tx.delete(STAMPED, "a")
            assert tx.get(STAMPED, "a") is None
        with store.transaction() as tx:
            tx.insert(STAMPED, {"name": "b"}, {})
            tx.rollback()  # not committed: not announced
        assert (first, second, gone) == (1, 2, {"generation": 3})
        if listener is not None:
            heard = [json.loads(n.payload) for n in listener.notifies(timeout=0.5)]
            assert heard == [{"name": "a", "generation": 1}, {"name": "a", "generation": 2},
                             {"name": "a", "generation": 3}]
    finally:
        if listener is not None:
            listener.close()


def test_a_table_made_by_hand_before_the_store_opens_unchanged(url: str) -> None:
    # the DDL the services' hand-rolled stores ran, and a row they wrote
    ddl = ("CREATE TABLE kit_doc_items (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
           "create_time TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL)")
    row = ("old", "ann", "2025-12-31T00:00:00", "e0", json.dumps({"old": True}))
    run_sql(url, [ddl, ("INSERT INTO kit_doc_items VALUES (?, ?, ?, ?, ?)", row)])
    store = DocumentStore(url, metadata, scope="kit-test", setup=_seed)
    try:
        with store.transaction() as tx:
            doc = tx.get(ITEMS, "old")
            assert doc is not None and doc.data == {"old": True}
            tx.replace(ITEMS, {**_item(0), "id": "old", "etag": "e1"}, {"old": False},
                       expected="e0")
            tx.insert(ITEMS, _item(1), {})
            docs, _ = tx.page(ITEMS, filters={}, order=("-create_time", "-id"), size=10,
                              token="", kind="items")
        assert [d.columns["id"] for d in docs] == ["i01", "old"]
    finally:
        store.close()
