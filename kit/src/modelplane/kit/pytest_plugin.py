"""pytest fixtures for real PostgreSQL and Redis (loaded through the ``pytest11`` entry point).

PostgreSQL: ``MODELPLANE_TEST_POSTGRES`` (a DSN of a server where the user may
create databases), else a throwaway container from testcontainers when a Docker
engine answers, else the tests that ask for it skip and say how to enable them.
Every database made here is dropped at the end of the test session.
Redis likewise with ``MODELPLANE_TEST_REDIS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from modelplane.kit.errors import ModelplaneError

HOW_POSTGRES = ("PostgreSQL tests need a server: set MODELPLANE_TEST_POSTGRES="
                "postgresql://postgres@127.0.0.1:5432/postgres (or run a Docker engine "
                "for testcontainers)")
HOW_REDIS = ("Redis tests need a server: set MODELPLANE_TEST_REDIS=redis://127.0.0.1:6379/0 "
             "(or run a Docker engine for testcontainers)")


async def rpc_error(call: Awaitable[Any]) -> ModelplaneError:
    """The ModelplaneError (code, reason, metadata, field violations) an awaited gRPC
    call failed with; fails the test if the call succeeded."""
    import grpc  # (here: the plugin is loaded by every pytest run)

    from modelplane.kit.status import raise_from_rpc_error

    try:
        await call
    except grpc.aio.AioRpcError as err:
        try:
            raise_from_rpc_error(err)
        except ModelplaneError as exc:
            return exc
    raise AssertionError("the call succeeded but should have failed")


def schemathesis_request(case: Any, headers: dict[str, str]) -> dict[str, Any] | None:
    """httpx keyword arguments for a schemathesis case: its query, ``headers`` and its
    body as JSON (newline-delimited for ``application/x-ndjson``); None when the body
    is not representable as JSON at all."""
    from schemathesis.core import NotSet

    kwargs: dict[str, Any] = {"params": case.query or None, "headers": headers}
    if isinstance(case.body, NotSet):
        return kwargs
    try:
        if case.media_type == "application/x-ndjson":
            items = case.body if isinstance(case.body, list) else [case.body]
            kwargs["content"] = "\n".join(json.dumps(i) for i in items).encode()
        else:
            kwargs["content"] = json.dumps(case.body).encode()
            headers["content-type"] = "application/json"
    except (TypeError, ValueError):
        return None
    return kwargs


_MLFLOW_PROCESS_STATE = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID",
                         "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_TOKEN")
#: module globals mlflow's setters keep beside the environment
_MLFLOW_GLOBALS = (("mlflow.tracking.fluent", "_active_experiment_id"),
                   ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
                   ("mlflow.tracking._model_registry.utils", "_registry_uri"))


@pytest.fixture(autouse=True, scope="module")
def _mlflow_state_stays_in_its_module() -> Iterator[None]:
    """``mlflow.set_experiment`` / ``set_tracking_uri`` / ``set_registry_uri`` export
    ``MLFLOW_EXPERIMENT_ID`` / ``_TRACKING_URI`` / ``_REGISTRY_URI`` into ``os.environ`` (for
    subprocesses) and keep them as module globals: the next module's child process would
    then register its model in the previous module's store, or look for an experiment
    that is not there. Each test module gets back the MLflow state it started with."""
    saved = {name: os.environ.get(name) for name in _MLFLOW_PROCESS_STATE}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    import sys

    for module_name, attribute in _MLFLOW_GLOBALS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            setattr(module, attribute, None)


async def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``check()`` came true within ``seconds``, asking every 50 ms (an event
    seen from outside, such as a delivery stored or a lease taken)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children...), from ``/proc`` (Linux)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if ppid == parent:
                found.append(int(entry.name))
                todo.append(int(entry.name))
    return found


def free_port_block(size: int = 16) -> int:
    """A base port whose next ``size`` ports are all free on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - size)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of ports found")


def _docker_available() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return bool(host) or Path("/var/run/docker.sock").exists()


def postgres_url(dsn: str, dbname: str | None = None) -> str:
    """A ``postgresql://`` URL for a DSN in either form, optionally for another database."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(dsn)
    user = quote(str(parts.get("user") or os.environ.get("USER") or "postgres"))
    password = parts.get("password")
    auth = f"{user}:{quote(str(password))}" if password else user
    host = parts.get("host") or "127.0.0.1"
    port = parts.get("port") or 5432
    db = dbname or parts.get("dbname") or "postgres"
    return f"postgresql://{auth}@{host}:{port}/{db}"


def run_sql(url: str, statements: Sequence[str | tuple[str, Sequence[Any]]]) -> None:
    """Run ``statements`` (SQL with ``?`` placeholders, alone or with their parameters)
    in one transaction on ``url`` (``sqlite:///path`` or ``postgresql://``), through the
    drivers, not the code under test: e.g. a store as an earlier version wrote it."""
    pairs = [(s, ()) if isinstance(s, str) else s for s in statements]
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            with conn:
                for sql, args in pairs:
                    conn.execute(sql, tuple(args))
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg, pg.transaction():
        for sql, args in pairs:
            pg.execute(sql.replace("?", "%s"), tuple(args))


@pytest.fixture(scope="session")
def postgres_server_dsn() -> Iterator[str]:
    dsn = os.environ.get("MODELPLANE_TEST_POSTGRES")
    if dsn:
        yield postgres_url(dsn)
        return
    if not _docker_available():
        pytest.skip(HOW_POSTGRES)
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as pg:
        yield postgres_url(pg.get_connection_url())


@pytest.fixture(scope="session")
def make_postgres_database(postgres_server_dsn: str) -> Iterator[Callable[[str], str]]:
    """``make(prefix) -> url`` of a new, empty database, dropped after the session."""
    import psycopg

    created: list[str] = []

    def make(prefix: str = "mp_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}".lower()
        with psycopg.connect(postgres_server_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return postgres_url(postgres_server_dsn, name)

    yield make
    with psycopg.connect(postgres_server_dsn, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_dsn(make_postgres_database: Callable[[str], str]) -> str:
    """URL of a fresh database for this test session."""
    return make_postgres_database("mp_test")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("MODELPLANE_TEST_REDIS")
    if url:
        yield url
        return
    if not _docker_available():
        pytest.skip(HOW_REDIS)
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7-alpine") as rc:
        yield f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
