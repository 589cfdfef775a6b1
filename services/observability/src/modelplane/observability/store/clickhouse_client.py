"""The narrow seam between the ClickHouse evaluation store and a ClickHouse:
chDB (ClickHouse in-process, a directory, like the DuckDB file) or a server
over HTTP (clickhouse-connect). Both take the same SQL, with server-side
``{name:Type}`` parameters, and move rows as Arrow tables.

The URL (``MODELPLANE_OBSERVABILITY_CLICKHOUSE_URL``) says which:

- ``chdb:///abs/dir`` (or ``chdb:`` = ``<data dir>/observability/clickhouse``),
  optional ``?database=name`` (default ``modelplane``);
- ``clickhouse://user:password@host:8123/database`` (``clickhouses://`` for TLS).

chDB runs one embedded ClickHouse per process, on one directory: a second
directory in the same process is refused until every store on the first is
closed (stores on the same directory, each in its own database, are fine).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa

DEFAULT_DATABASE = "modelplane"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ClickHouseClient(Protocol):
    """What the store needs of a ClickHouse. SQL names its tables qualified with
    :attr:`database`; parameters are Python values bound to ``{name:Type}``."""

    database: str

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def arrow(self, sql: str, params: dict[str, Any] | None = None,
              binary: bool = False) -> pa.Table:
        """The result as Arrow; ``String`` columns as ``binary`` when asked (bytes
        that are not text), else ``string``. ``sql`` then ends without SETTINGS."""

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Insert ``data``'s columns (by name) into ``table`` (qualified)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class ClickHouseLocation:
    """A parsed ``MODELPLANE_OBSERVABILITY_CLICKHOUSE_URL``."""

    kind: str  # "chdb" or "http"
    database: str
    path: Path | None = None  # chdb
    host: str = ""
    port: int = 8123
    username: str = "default"
    password: str = ""
    secure: bool = False

    @classmethod
    def parse(cls, url: str, data_dir: Path) -> ClickHouseLocation:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.scheme == "chdb":
            database = query.get("database", [DEFAULT_DATABASE])[0]
            raw = unquote(parts.netloc + parts.path)
            path = Path(raw) if raw else data_dir / "clickhouse"
            return cls("chdb", _database(database, url), path=path)
        if parts.scheme in ("clickhouse", "clickhouses", "http", "https"):
            if not parts.hostname:
                raise ValueError(f"ClickHouse URL {url!r} names no host")
            secure = parts.scheme in ("clickhouses", "https")
            database = parts.path.strip("/") or DEFAULT_DATABASE
            return cls("http", _database(database, url), host=parts.hostname,
                       port=parts.port or (8443 if secure else 8123),
                       username=unquote(parts.username or "default"),
                       password=unquote(parts.password or ""), secure=secure)
        raise ValueError(f"ClickHouse URL {url!r}: the scheme must be chdb: or clickhouse://")

    def connect(self) -> ClickHouseClient:
        if self.kind == "chdb":
            assert self.path is not None
            return ChdbClient(self.path, self.database)
        return HttpClient(self)


def _database(name: str, url: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"ClickHouse URL {url!r}: database {name!r} is not a plain identifier")
    return name


# ---------------------------------------------------------------------------
# chDB


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _param_text(value: Any) -> str:
    """A parameter value as ClickHouse's text form of it (what the HTTP interface's
    ``param_<name>`` carries): strings escaped, arrays of quoted elements."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) if isinstance(v, str) else _param_text(v)
                              for v in value) + "]"
    return str(value)


class _ChdbServer:
    """The process's embedded ClickHouse: one directory at a time (chDB's rule),
    counted by the stores that use it."""

    lock = threading.Lock()
    path: Path | None = None
    users = 0


def _ipc(data: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return bytes(sink.getvalue())


class ChdbClient:
    """chDB: a session on the directory (sessions are thread-safe)."""

    def __init__(self, path: Path, database: str) -> None:
        from chdb import session

        self.database = database
        path = path.resolve()
        with _ChdbServer.lock:
            if _ChdbServer.users and _ChdbServer.path != path:
                raise ValueError(
                    f"chDB runs one ClickHouse per process: {_ChdbServer.path} is open, "
                    f"{path} cannot be opened beside it (use another database in the same "
                    "directory: chdb:///dir?database=name)")
            path.mkdir(parents=True, exist_ok=True)
            self._session: Any = session.Session(str(path))
            _ChdbServer.path = path
            _ChdbServer.users += 1
        self._closed = False

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._session.query(sql, "Null", params=self._params(params))

    def arrow(self, sql: str, params: dict[str, Any] | None = None,
              binary: bool = False) -> pa.Table:
        if binary:
            sql += " SETTINGS output_format_arrow_string_as_string = 0"
        table: pa.Table = self._session.query(sql, "ArrowTable", params=self._params(params))
        return table

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        if not data.num_rows:
            return
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        inserter = self._session.send_insert(f"INSERT INTO {table} ({columns})", "ArrowStream")
        try:
            inserter.append(_ipc(data))
            inserter.finish()
        except BaseException:
            inserter.cancel()
            raise

    def close(self) -> None:
        with _ChdbServer.lock:
            if self._closed:
                return
            self._closed = True
            self._session.close()
            _ChdbServer.users -= 1

    @staticmethod
    def _params(params: dict[str, Any] | None) -> dict[str, str] | None:
        return {k: _param_text(v) for k, v in params.items()} if params else None


# ---------------------------------------------------------------------------
# A server over HTTP


class HttpClient:
    """clickhouse-connect: the server's HTTP interface (thread-safe client)."""

    def __init__(self, where: ClickHouseLocation) -> None:
        import clickhouse_connect

        self.database = where.database
        # The database is created by the store (it may not exist yet): connect to default.
        self._client: Any = clickhouse_connect.get_client(
            host=where.host, port=where.port, username=where.username, password=where.password,
            secure=where.secure, database="default", autogenerate_session_id=False)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._client.command(sql, parameters=params)

    def arrow(self, sql: str, params: dict[str, Any] | None = None,
              binary: bool = False) -> pa.Table:
        table: pa.Table = self._client.query_arrow(sql, parameters=params,
                                                   use_strings=not binary)
        return table

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        if data.num_rows:
            database, _, name = table.rpartition(".")
            self._client.insert_arrow(name, data, database=database or self.database)

    def close(self) -> None:
        self._client.close()
