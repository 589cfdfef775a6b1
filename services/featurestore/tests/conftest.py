"""Fixtures for the featurestore tests: a real server on real Feast stores.

``featurestore`` is a running server (module scope: Feast is slow to start)
in one of three store configurations, so behaviour tests run unchanged on
each: the embedded default (SQLite online, DuckDB/parquet offline, file
registry), PostgreSQL (offline + online + registry + records) and Redis
(online store, with PostgreSQL for the rest).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pyarrow as pa
import pytest
from pyarrow import ipc

from modelplane.api.v1 import types_pb2
from modelplane.kit.settings import ServiceSettings

TS = pa.timestamp("us", tz="UTC")


def ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def table_data(table: pa.Table) -> types_pb2.TableData:
    return types_pb2.TableData(arrow_ipc=ipc_bytes(table))


def ts(dt: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    out = Timestamp()
    out.FromDatetime(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
    return out


@dataclass
class RunningFeatureStore:
    config: str
    address: str
    channel: grpc.aio.Channel
    stub: Any          # modelplane FeatureStoreServiceStub
    feast_stub: Any    # feast.serving.ServingServiceStub
    core: Any          # the runtime's parts (runtime.FeatureStoreParts)
    data_dir: Path

    def unique(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _settings(config: str, tmp: Path, make_db: Callable[[str], str] | None,
              redis_url: str | None) -> Any:
    from modelplane.featurestore.settings import FeatureStoreSettings

    project = "t" + uuid.uuid4().hex[:8]
    if config == "default":
        return FeatureStoreSettings(data_dir=tmp, project=project)
    assert make_db is not None
    db = make_db("mp_fs")
    if config == "postgres":
        return FeatureStoreSettings(data_dir=tmp, project=project, offline_store="postgres",
                                    online_store="postgres", registry="postgres", database_url=db)
    return FeatureStoreSettings(data_dir=tmp, project=project, offline_store="postgres",
                                online_store="redis", registry="postgres", database_url=db,
                                redis_url=redis_url or "")


@pytest.fixture(scope="module", params=["default", "postgres", "redis"])
async def featurestore(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                       ) -> AsyncIterator[RunningFeatureStore]:
    config = request.param
    make_db = redis_url = None
    if config in ("postgres", "redis"):
        make_db = request.getfixturevalue("make_postgres_database")
    if config == "redis":
        redis_url = request.getfixturevalue("redis_url")
    yield_value = await _start(config, tmp_path_factory.mktemp(f"fs-{config}"), make_db, redis_url)
    running_ctx, fs = yield_value
    try:
        yield fs
    finally:
        await fs.channel.close()
        await running_ctx.__aexit__(None, None, None)


async def _start(config: str, tmp: Path, make_db: Any,
                 redis_url: Any) -> tuple[Any, RunningFeatureStore]:
    from feast.protos.feast.serving import ServingService_pb2_grpc

    from modelplane.featurestore.runtime import build_spec
    from modelplane.featurestore.v1 import featurestore_pb2_grpc
    from modelplane.kit.server import running

    fs_settings = _settings(config, tmp / "data", make_db, redis_url)
    settings = ServiceSettings(service="featurestore", listen="127.0.0.1:0", data_root=tmp,
                               auth_enabled=False)
    spec, runtime = build_spec(settings, fs_settings)
    ctx = running(spec, settings)
    svc = await ctx.__aenter__()
    channel = grpc.aio.insecure_channel(svc.address)
    return ctx, RunningFeatureStore(
        config=config, address=svc.address, channel=channel,
        stub=featurestore_pb2_grpc.FeatureStoreServiceStub(channel),
        feast_stub=ServingService_pb2_grpc.ServingServiceStub(channel), core=runtime.current(),
        data_dir=fs_settings.data_dir)


@pytest.fixture(scope="module")
async def default_featurestore(tmp_path_factory: pytest.TempPathFactory
                               ) -> AsyncIterator[RunningFeatureStore]:
    """Only the embedded configuration (tests whose subject is not the store)."""
    ctx, fs = await _start("default", tmp_path_factory.mktemp("fs-default"), None, None)
    try:
        yield fs
    finally:
        await fs.channel.close()
        await ctx.__aexit__(None, None, None)
