"""A running observability service per store backend (embedded DuckDB and a
real PostgreSQL)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # obs_test_data, with --import-mode=importlib

from obs_test_data import Service

from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc


@pytest.fixture(scope="session", params=["embedded", "postgres"])
async def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Service]:
    tmp: Path = tmp_path_factory.mktemp(f"obs-{request.param}")
    db = None
    if request.param == "postgres":
        db = request.getfixturevalue("make_postgres_database")("mp_obs")
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"}).with_listen("127.0.0.1:0")
    # The monitor test's webhook receiver listens on loopback: allowed explicitly.
    settings = ObservabilitySettings(svc, database_url=db, http_addr="127.0.0.1:0",
                                     monitor_tick_seconds=0, webhook_allow=("127.0.0.1",))
    rt = ObservabilityRuntime(settings)
    spec, _ = build(settings, rt)
    async with running(spec, svc) as server:
        channel = grpc.aio.insecure_channel(server.address)
        yield Service(pb_grpc.ObservabilityServiceStub(channel), rt, request.param)
        await channel.close()

