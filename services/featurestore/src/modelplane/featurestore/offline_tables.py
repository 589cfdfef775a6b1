"""Where feature views' offline rows are written and read back (parquet files or PostgreSQL).

Feast reads these sources for materialization and training sets; Feast's own
offline write path only exists for some stores and rewrites whole files, so
appends are done here: a new parquet part file (renamed into place, so a
reader never sees half a file) or one PostgreSQL transaction.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from modelplane.featurestore.definitions import (
    SourceKind,
    SourceSpec,
    ValueKind,
    check_table_identifier,
)
from modelplane.featurestore.row_schema import ViewColumns
from modelplane.kit.errors import FailedPrecondition, InvalidArgument

_PG_TYPES = {
    ValueKind.STRING: "text", ValueKind.INT32: "integer", ValueKind.INT64: "bigint",
    ValueKind.FLOAT: "real", ValueKind.DOUBLE: "double precision", ValueKind.BOOL: "boolean",
    ValueKind.BYTES: "bytea", ValueKind.UNIX_TIMESTAMP: "timestamptz",
}


class OfflineTables(Protocol):
    kind: SourceKind

    def default_source(self, view_name: str) -> SourceSpec: ...

    def ensure(self, source: SourceSpec, columns: ViewColumns) -> None: ...

    def append(self, source: SourceSpec, rows: pa.Table) -> None: ...

    def read(self, source: SourceSpec, start: datetime | None = None,
             end: datetime | None = None, columns: Sequence[str] | None = None) -> pa.Table: ...


def _time_filter(ts: str, start: datetime | None, end: datetime | None,
                 placeholders: Sequence[str]) -> tuple[str, list[datetime]]:
    clauses: list[str] = []
    params: list[datetime] = []
    for bound, op in ((start, ">="), (end, "<")):
        if bound is not None:
            clauses.append(f"{_quote(ts)} {op} {placeholders[len(params)]}")
            params.append(bound)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ParquetOfflineTables:
    """Sources as directories of parquet part files (``<root>/<view>/*.parquet``)."""

    kind = SourceKind.FILE

    def __init__(self, root: Path) -> None:
        self.root = root

    def default_source(self, view_name: str) -> SourceSpec:
        return SourceSpec(name=f"{view_name}_source", kind=SourceKind.FILE,
                          path=str(self.root / view_name / "*.parquet"))

    @staticmethod
    def _directory(source: SourceSpec) -> Path | None:
        path = Path(source.path)
        return path.parent if "*" in path.name else (path if path.is_dir() else None)

    def ensure(self, source: SourceSpec, columns: ViewColumns) -> None:
        directory = self._directory(source)
        if directory is None:
            if not Path(source.path).exists():
                Path(source.path).parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(columns.arrow_schema().empty_table(), source.path)
            return
        directory.mkdir(parents=True, exist_ok=True)
        if not any(directory.glob("*.parquet")):
            # DuckDB cannot read a glob matching nothing: an empty part holds the schema.
            self._write_part(directory, columns.arrow_schema().empty_table(), "part-0-empty")

    @staticmethod
    def _write_part(directory: Path, rows: pa.Table, stem: str) -> Path:
        final = directory / f"{stem}.parquet"
        tmp = directory / f".{stem}.parquet.tmp"
        pq.write_table(rows, tmp)
        os.replace(tmp, final)
        return final

    def append(self, source: SourceSpec, rows: pa.Table) -> None:
        directory = self._directory(source)
        if directory is None:
            # A single-file source (e.g. from an applied repo): rewrite it whole, atomically.
            path = Path(source.path)
            old = pq.read_table(path) if path.exists() else rows.schema.empty_table()
            merged = pa.concat_tables([old.select(rows.column_names).cast(rows.schema), rows])
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            pq.write_table(merged, tmp)
            os.replace(tmp, path)
            return
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        self._write_part(directory, rows, f"part-{stamp}-{uuid.uuid4().hex[:8]}")

    def read(self, source: SourceSpec, start: datetime | None = None,
             end: datetime | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        import duckdb

        where, params = _time_filter(source.timestamp_field, start, end, ("$2", "$3"))
        cols = ", ".join(_quote(c) for c in columns) if columns else "*"
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            return con.sql(f"SELECT {cols} FROM read_parquet($1, union_by_name=true){where}",
                           params=[source.path, *params]).to_arrow_table()


class PostgresOfflineTables:
    """Sources as PostgreSQL tables (``fs_<view>``) in the service's database."""

    kind = SourceKind.POSTGRES

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def default_source(self, view_name: str) -> SourceSpec:
        return SourceSpec(name=f"{view_name}_source", kind=SourceKind.POSTGRES,
                          table=f"fs_{view_name.lower()}")

    def _connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(self.conninfo)

    @staticmethod
    def _from(source: SourceSpec) -> sql.Composable:
        """The source's table as quoted identifiers: a source names a table, never SQL
        (a ``(SELECT ...)`` source from before this rule is refused, not spliced)."""
        try:
            parts = check_table_identifier(source.table, "source.table")
        except InvalidArgument:
            raise FailedPrecondition(
                f"source {source.name!r} does not name a [schema.]table; re-apply its feature "
                "view with a table name", reason="SOURCE_TABLE_INVALID",
                metadata={"source": source.name}) from None
        return sql.Identifier(*parts)

    def ensure(self, source: SourceSpec, columns: ViewColumns) -> None:
        defs = [sql.SQL("{} {} NOT NULL").format(sql.Identifier(k), sql.SQL(_PG_TYPES[kind]))
                for k, kind in columns.join_keys.items()]
        defs.append(sql.SQL("{} timestamptz NOT NULL").format(
            sql.Identifier(columns.timestamp_field)))
        if columns.created_timestamp_column:
            defs.append(sql.SQL("{} timestamptz").format(
                sql.Identifier(columns.created_timestamp_column)))
        defs += [sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL(_PG_TYPES[kind]))
                 for f, kind in columns.features.items()]
        table = self._from(source)
        index = f"{source.table}_keys_ts".replace(".", "_")[:60]
        keys = sql.SQL(", ").join(sql.Identifier(k)
                                  for k in [*columns.join_keys, columns.timestamp_field])
        with self._connect() as conn:
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                table, sql.SQL(", ").join(defs)))
            conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(index), table, keys))

    def append(self, source: SourceSpec, rows: pa.Table) -> None:
        table = self._from(source)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in rows.column_names)
        with self._connect() as conn, conn.cursor() as cur, \
                cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, cols)) as copy:
            for row in rows.to_pylist():
                copy.write_row(tuple(row.values()))

    def read(self, source: SourceSpec, start: datetime | None = None,
             end: datetime | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        ts = sql.Identifier(source.timestamp_field)
        clauses: list[sql.Composable] = []
        params: list[datetime] = []
        for bound, op in ((start, ">="), (end, "<")):
            if bound is not None:
                clauses.append(sql.SQL("{} " + op + " %s").format(ts))
                params.append(bound)
        query = sql.SQL("SELECT {} FROM {}{}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns) if columns else sql.SQL("*"),
            self._from(source),
            sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL(""))
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            names = [d.name for d in cur.description or []]
            data = cur.fetchall()
        return pa.Table.from_pylist([dict(zip(names, r)) for r in data]) if data else \
            pa.table({n: pa.array([], pa.null()) for n in names})
