"""A start that fails midway (the dashboard's port is taken, after the store was
opened and the background parts started) releases what it made: the store, the
analysis threads, the lease. (The peer channels are the kit base's, tested in
kit/tests/test_kit_runtime.py.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.store.embedded import EmbeddedStore


async def test_a_start_failing_on_the_dashboard_port_closes_the_store_and_threads(
        tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        svc = ServiceSettings.from_env("observability", {
            "MODELPLANE_DATA_DIR": str(tmp_path), "MODELPLANE_AUTH": "off",
        }).with_listen("127.0.0.1:0")
        settings = ObservabilitySettings(
            svc, http_addr=f"127.0.0.1:{taken.getsockname()[1]}", monitor_tick_seconds=0)
        rt = ObservabilityRuntime(settings)
        spec, _ = build(settings, rt)
        with pytest.raises(OSError, match="could not listen"):
            async with running(spec, svc):
                pytest.fail("the service must not start on a taken dashboard port")
    finally:
        taken.close()
    assert isinstance(rt.store, EmbeddedStore)
    assert rt.store._conn is None  # closed (it had been opened: the catalogs were read)
    with pytest.raises(RuntimeError, match="shutdown"):
        rt.executor.submit(print)
    assert not rt.lease.held()
