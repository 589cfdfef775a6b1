"""``modelplane up --replicas serving=2,observability=2 --postgres DSN``: several
processes per service on PostgreSQL, behind the gateway, which balances over them.

About 4-5 minutes on a 2-core machine shared with other work (eight processes start;
``up`` took 210 s at load 11).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.kit.pytest_plugin import free_port_block

_spec = importlib.util.spec_from_file_location(
    "modelplane_scale_harness", Path(__file__).with_name("platform_harness.py"))
assert _spec is not None and _spec.loader is not None
h = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = h
_spec.loader.exec_module(h)

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux",
                       reason="session sweep and PR_SET_PDEATHSIG are Linux only"),
    # the module's platform starts inside the first test's budget: cold `up` on a busy
    # 2-core machine took 257 s
    pytest.mark.timeout(900),
]

STRIDE = 25  # replica r listens on the first replica's ports + 25 * r


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory,
             make_postgres_database: Callable[[str], str],
             postgres_server_dsn: str) -> Any:
    import psycopg

    dsn = make_postgres_database("mp_replicas")
    prefix = dsn.rsplit("/", 1)[1].split("?")[0]
    data = tmp_path_factory.mktemp("replicas")
    started = time.monotonic()
    p = h.start(data, free_port_block(60), "--replicas", "serving=2,observability=2",
                env={"MODELPLANE_POSTGRES": dsn})
    print(f"up --detach with 8 processes took {time.monotonic() - started:.1f}s")
    try:
        assert p.up is not None and p.up.returncode == 0, p.up.stdout + p.up.stderr
        yield p
    finally:
        leftovers = h.stop(p)
        with psycopg.connect(postgres_server_dsn, autocommit=True) as conn:
            for service in h.PARTS[:-1]:
                conn.execute(f'DROP DATABASE IF EXISTS "{prefix}_{service}" WITH (FORCE)')
        assert not leftovers, f"left behind by down: {leftovers}"


def test_every_replica_runs_on_its_own_ports_and_serves(platform: Any) -> None:
    report = platform.status()
    for name, offset in (("serving", 4), ("observability", 5)):
        entry = report["services"][name]
        assert entry["status"] == "SERVING"
        assert [r["grpc"] for r in entry["replicas"]] == [
            f"127.0.0.1:{platform.base + offset}", f"127.0.0.1:{platform.base + offset + STRIDE}"]
        assert [r["status"] for r in entry["replicas"]] == ["SERVING", "SERVING"]
        assert len({r["pid"] for r in entry["replicas"]}) == 2
    for name in ("featurestore", "registry", "validator"):
        assert "replicas" not in report["services"][name]
    # each on PostgreSQL, its own database
    state = platform.state()
    assert state["postgres"] is True and state["replicas"] == {"serving": 2,
                                                               "observability": 2}


def _count(body: str, service: str, method: str) -> float:
    pattern = (rf'modelplane_rpc_requests_total\{{code="OK",method="{re.escape(method)}",'
               rf'service="{service}"\}} ([0-9.e+]+)')
    found = re.search(pattern, body)
    return float(found.group(1)) if found else 0.0


def test_the_gateway_balances_calls_over_the_replicas(platform: Any) -> None:
    method = "modelplane.observability.v1.ObservabilityService/ListObservedModels"
    metrics = [f"http://127.0.0.1:{platform.base + 20 + STRIDE * r}/metrics" for r in (0, 1)]
    before = [_count(httpx.get(u, timeout=10).text, "observability", method) for u in metrics]
    headers = {"authorization": f"Bearer {platform.key}"}
    with httpx.Client(base_url=platform.gateway, headers=headers, timeout=30) as client:
        for _ in range(40):
            r = client.get("/v1/observedModels")
            assert r.status_code == 200, r.text
    after = [_count(httpx.get(u, timeout=10).text, "observability", method) for u in metrics]
    calls = [a - b for a, b in zip(after, before, strict=True)]
    print(f"ListObservedModels through the gateway, per observability replica: {calls}")
    assert sum(calls) == 40
    assert min(calls) >= 10, calls  # round robin: about half each
