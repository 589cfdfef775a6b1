"""A small document store on SQLAlchemy Core: SQLite (embedded default) or PostgreSQL.

A *collection* is one table: a primary key, a JSON body (a ``TEXT`` column) and
the columns it is looked up, listed and paged by. The services declare their
tables (``document_table``, or any ``sqlalchemy.Table``) as they have always
been (same names, same columns), so a store written before this module opens
unchanged; tables are created only when missing, never altered.

    store = DocumentStore(url, metadata, scope="validator")
    with store.transaction() as tx:                  # one transaction, one connection
        tx.insert(RUNS, {"id": ..., "model": ...}, body)
        doc = tx.get(RUNS, "run-1")                  # Document(body=<text>, columns={...})
        docs, token = tx.page(RUNS, filters={"model": "m"}, order=("-create_time", "-id"),
                              size=50, token=request_token, kind="validation_runs")

Writes: ``insert`` (AlreadyExists on a duplicate key or unique column), ``upsert``,
``replace`` (a compare-and-set on the collection's ``version`` column, the etag
or revision: NotFound when the row is gone, Aborted when it changed), ``delete``.
The errors are the callers' to name (``exists=``, ``missing=``, ``changed=``).

In the same transaction: a collection's ``on_write`` hook runs first in every
write of one of its documents and returns column values stamped on the row
(serving's store-wide generation counter); ``tx.notify`` sends a PostgreSQL
notification delivered only if, and when, the transaction commits; ``tx.execute``
runs any other statement. ``tx.rollback()`` has the transaction rolled back,
not committed, when its block ends (without an error).

URLs: ``sqlite:///path`` or a bare file path; ``postgresql://`` or ``postgres://``
(psycopg 3). Schema creation runs under ``kit.pgschema.lock_schema`` on
PostgreSQL, because concurrent ``CREATE TABLE IF NOT EXISTS`` race there.
Blocking: call from a worker thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import SchemaItem

from modelplane.kit import paging
from modelplane.kit.errors import Aborted, AlreadyExists, NotFound
from modelplane.kit.pgschema import lock_schema

__all__ = [
    "Collection",
    "Document",
    "DocumentStore",
    "Transaction",
    "WriteHook",
    "document_table",
    "is_postgres",
    "sqlalchemy_url",
]

#: ``on_write(tx, op, key)`` with op "insert" | "upsert" | "replace" | "delete"
WriteHook = Callable[["Transaction", str, tuple[Any, ...]], Mapping[str, Any]]
ErrorFactory = Callable[[], Exception]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def sqlalchemy_url(url: str) -> sa.URL:
    """The SQLAlchemy URL of ``url``: PostgreSQL through psycopg 3, SQLite by file path."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return sa.make_url("postgresql+psycopg://" + url[len(prefix):])
    if url.startswith("sqlite:"):
        return sa.URL.create("sqlite", database=url.removeprefix("sqlite:///"))
    if "://" in url:  # any other SQLAlchemy URL (postgresql+psycopg://, ...), as given
        return sa.make_url(url)
    return sa.URL.create("sqlite", database=url)


def document_table(name: str, metadata: sa.MetaData, key: Sequence[str],
                   columns: Sequence[str] = (), *more: SchemaItem,
                   body: str = "body") -> sa.Table:
    """A collection's table: ``key`` and ``columns`` ``TEXT NOT NULL`` (the key the
    primary key), then ``more`` (other columns, a key part of another type with
    ``primary_key=True``, indexes, constraints), then the JSON ``body`` column."""
    return sa.Table(
        name, metadata,
        *(sa.Column(c, sa.Text, primary_key=True) for c in key),
        *(sa.Column(c, sa.Text, nullable=False) for c in columns),
        *more,
        sa.Column(body, sa.Text, nullable=False),
    )


@dataclass(frozen=True)
class Collection:
    """One table holding documents: its primary key, JSON ``body`` column and, if
    replaced with a compare-and-set, its ``version`` column (an etag or revision)."""

    table: sa.Table
    body: str = "body"
    version: str | None = None
    on_write: WriteHook | None = None

    @property
    def name(self) -> str:
        return str(self.table.name)

    @property
    def key_columns(self) -> tuple[sa.Column[Any], ...]:
        return tuple(self.table.primary_key.columns)

    def key_of(self, key: Any) -> tuple[Any, ...]:
        values = key if isinstance(key, tuple) else (key,)
        if len(values) != len(self.key_columns):
            raise ValueError(f"{self.name}: a key has {len(self.key_columns)} part(s), "
                             f"got {values!r}")
        return values

    def key_clause(self, key: Any) -> sa.ColumnElement[bool]:
        return sa.and_(*(c == v for c, v in zip(self.key_columns, self.key_of(key), strict=True)))

    def key_from_values(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[c.name] for c in self.key_columns)


@dataclass(frozen=True)
class Document:
    """A stored row: its JSON ``body`` as text and every other column."""

    body: str
    columns: Mapping[str, Any]

    @property
    def data(self) -> Any:
        return json.loads(self.body)


def _text(body: str | Mapping[str, Any]) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def _is_unique_violation(exc: sa_exc.IntegrityError) -> bool:
    orig = exc.orig
    return (getattr(orig, "sqlstate", None) == "23505"
            or "UNIQUE constraint failed" in str(orig))


def _order(coll: Collection, order: Sequence[str]) -> list[tuple[sa.Column[Any], bool]]:
    """``("-create_time", "id")``: columns, descending when prefixed with ``-``."""
    return [(coll.table.c[o.removeprefix("-")], o.startswith("-")) for o in order]


def _after(columns: Sequence[tuple[sa.Column[Any], bool]],
           position: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after ``position`` in the order of ``columns`` (keyset paging)."""
    terms: list[sa.ColumnElement[bool]] = []
    for i, (column, descending) in enumerate(columns):
        beyond = column < position[i] if descending else column > position[i]
        equal = [c == v for (c, _), v in zip(columns[:i], position[:i], strict=True)]
        terms.append(sa.and_(*equal, beyond))
    return sa.or_(*terms)


def _keyset(size: int) -> Callable[[Any], tuple[Any, ...]]:
    def shape(raw: Any) -> tuple[Any, ...]:
        if not isinstance(raw, list) or len(raw) != size:
            raise TypeError(raw)
        for value in raw:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise TypeError(value)
        return tuple(raw)
    return shape


class Transaction:
    """The document operations inside one database transaction (see the module doc)."""

    def __init__(self, connection: sa.Connection, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres
        self.rolled_back = False

    # --- extras in the same transaction -------------------------------------------------
    def execute(self, statement: sa.Executable,
                params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
                ) -> sa.CursorResult[*tuple[Any, ...]]:
        return self.connection.execute(statement, params)

    def notify(self, channel: str, payload: Mapping[str, Any]) -> None:
        """PostgreSQL ``NOTIFY channel`` with ``payload`` as JSON, sent at commit and
        only if the transaction commits. SQLite is one process: nothing to tell."""
        if self.postgres:
            self.connection.execute(sa.select(sa.func.pg_notify(channel, json.dumps(payload))))

    def rollback(self) -> None:
        """Roll the transaction back instead of committing it when its block ends."""
        self.rolled_back = True

    def _stamp(self, coll: Collection, op: str, key: tuple[Any, ...]) -> dict[str, Any]:
        return dict(coll.on_write(self, op, key)) if coll.on_write is not None else {}

    # --- reads ----------------------------------------------------------------------------
    def get(self, coll: Collection, key: Any) -> Document | None:
        row = self.connection.execute(
            sa.select(coll.table).where(coll.key_clause(key))).mappings().first()
        return None if row is None else Document(row[coll.body], dict(row))

    def select(self, coll: Collection, where: Mapping[str, Any] | None = None, *,
               order: Sequence[str] = (), after: Sequence[Any] | None = None,
               limit: int | None = None, offset: int = 0) -> list[Document]:
        """Documents whose columns equal ``where``'s values (a list or tuple: one of
        them; "" or None: no condition), in ``order``, from just after the keyset
        position ``after`` (the values of the ``order`` columns of the last row)."""
        query = sa.select(coll.table)
        for name, value in (where or {}).items():
            if isinstance(value, list | tuple):
                query = query.where(coll.table.c[name].in_(value))
            elif value is not None and value != "":
                query = query.where(coll.table.c[name] == value)
        columns = _order(coll, order)
        if after is not None:
            query = query.where(_after(columns, after))
        query = query.order_by(*(c.desc() if d else c.asc() for c, d in columns))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return [Document(row[coll.body], dict(row))
                for row in self.connection.execute(query).mappings()]

    def page(self, coll: Collection, *, filters: Mapping[str, str], order: Sequence[str],
             size: int, token: str, kind: str) -> tuple[list[Document], str]:
        """One page of a List RPC (``kit.paging``: page size, a keyset token bound to
        ``kind`` and ``filters``) and the next page's token ("" on the last)."""
        limit = paging.page_size(size)
        query = {"kind": kind, **filters}
        position = paging.decode_page_token(token, query, shape=_keyset(len(order)))
        rows = self.select(coll, filters, order=order, after=position, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        last = [rows[-1].columns[o.removeprefix("-")] for o in order] if more else None
        return rows, paging.encode_page_token(last, query)

    # --- writes ---------------------------------------------------------------------------
    def insert(self, coll: Collection, values: Mapping[str, Any], body: str | Mapping[str, Any],
               *, exists: ErrorFactory | None = None) -> dict[str, Any]:
        """Add a new document (``values``: its columns, key included); AlreadyExists
        (or ``exists()``) when its key or a unique column is taken. Returns the
        columns written, the ``on_write`` hook's included."""
        key = coll.key_from_values(values)
        row = {**values, **self._stamp(coll, "insert", key), coll.body: _text(body)}
        try:
            with self.connection.begin_nested():  # the transaction stays usable after a clash
                self.connection.execute(coll.table.insert().values(row))
        except sa_exc.IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise
            raise (exists() if exists is not None else AlreadyExists(
                f"{coll.name} {'/'.join(map(str, key))} already exists",
                reason="DOCUMENT_EXISTS", metadata={"collection": coll.name})) from None
        return row

    def upsert(self, coll: Collection, values: Mapping[str, Any], body: str | Mapping[str, Any],
               *, update: Sequence[str] | None = None) -> dict[str, Any]:
        """Insert, or overwrite the stored document's body and ``update`` columns
        (default: every column given)."""
        key = coll.key_from_values(values)
        row = {**values, **self._stamp(coll, "upsert", key), coll.body: _text(body)}
        changed = dict.fromkeys([*(update if update is not None else row), coll.body])
        insert = postgresql.insert if self.postgres else sqlite.insert
        self.connection.execute(insert(coll.table).values(row).on_conflict_do_update(
            index_elements=list(coll.key_columns), set_={c: row[c] for c in changed}))
        return row

    def replace(self, coll: Collection, values: Mapping[str, Any],
                body: str | Mapping[str, Any], *, expected: Any,
                missing: ErrorFactory | None = None,
                changed: Callable[[Any], Exception] | None = None) -> dict[str, Any]:
        """Overwrite the document if its ``version`` column still holds ``expected``
        (a compare-and-set: of concurrent writers expecting the same version one
        wins); NotFound (``missing()``) when it is gone, Aborted (``changed(stored
        version)``) when it changed."""
        if coll.version is None:
            raise TypeError(f"{coll.name} has no version column to compare")
        key = coll.key_from_values(values)
        row = {**values, **self._stamp(coll, "replace", key), coll.body: _text(body)}
        version = coll.table.c[coll.version]
        done = self.connection.execute(
            coll.table.update().where(coll.key_clause(key), version == expected).values(row))
        if done.rowcount == 1:
            return row
        stored = self.connection.execute(
            sa.select(version).where(coll.key_clause(key))).scalar_one_or_none()
        name = "/".join(map(str, key))
        if stored is None:
            raise (missing() if missing is not None else NotFound(
                f"{coll.name} {name} not found", reason="DOCUMENT_NOT_FOUND",
                metadata={"collection": coll.name}))
        raise (changed(stored) if changed is not None else Aborted(
            f"{coll.name} {name} was changed concurrently; read it again and retry",
            reason="DOCUMENT_CHANGED", metadata={"collection": coll.name}))

    def delete(self, coll: Collection, key: Any) -> dict[str, Any] | None:
        """Remove the document; the ``on_write`` hook's columns (``{}`` without a hook)
        if there was one, None if not (and then the hook's writes are undone)."""
        key = coll.key_of(key)
        savepoint = self.connection.begin_nested()
        stamp = self._stamp(coll, "delete", key)
        if self.connection.execute(coll.table.delete().where(coll.key_clause(key))).rowcount:
            savepoint.commit()
            return stamp
        savepoint.rollback()
        return None


class DocumentStore:
    """Collections in one SQL database; tables made (if missing) on open."""

    def __init__(self, url: str, metadata: sa.MetaData, *, scope: str,
                 setup: Callable[[Transaction], None] | None = None,
                 pool_size: int = 4) -> None:
        """``scope`` names the schema lock (``lock_schema``); ``setup(tx)`` runs in the
        schema transaction after the tables are made (column migrations, seed rows)."""
        self.url = url
        self.postgres = is_postgres(url)
        target = sqlalchemy_url(url)
        if self.postgres:
            self.engine = sa.create_engine(target, pool_size=pool_size, max_overflow=pool_size,
                                           pool_pre_ping=True)
        else:
            assert target.database is not None
            Path(target.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(target, connect_args={"check_same_thread": False})
            sa_event.listen(self.engine, "connect", _sqlite_connect)
            sa_event.listen(self.engine, "begin", _sqlite_begin)
        with self.transaction() as tx:
            if self.postgres:
                lock_schema(tx.connection.connection.driver_connection, scope)
            metadata.create_all(tx.connection, checkfirst=True)
            if setup is not None:
                setup(tx)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises
        or called ``tx.rollback()``."""
        with self.engine.connect() as conn:
            conn.begin()
            tx = Transaction(conn, self.postgres)
            try:
                yield tx
            except BaseException:
                conn.rollback()
                raise
            if tx.rolled_back:
                conn.rollback()
            else:
                conn.commit()


def _sqlite_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # SQLAlchemy, not the driver, emits BEGIN (below): SAVEPOINTs then work.
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA busy_timeout=30000")


def _sqlite_begin(conn: sa.Connection) -> None:
    # IMMEDIATE: the write lock at BEGIN, so a reading transaction that then writes
    # cannot fail to upgrade its lock (SQLITE_BUSY without waiting)
    conn.exec_driver_sql("BEGIN IMMEDIATE")
